"""Helpers for the tests: running the tools and reading what they logged."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Under pytest-xdist the workers share the cores: a thread each.
THREADS = '1' if os.environ.get('PYTEST_XDIST_WORKER') else '2'


def tool_env(env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """This process's environment for a tool: warnings off, the threads of
    :data:`THREADS`, and ``env`` on top."""
    return dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS=THREADS,
                **(env or {}))


# The scripts that run_tool runs in this process (see run_in_process).
# (tools/demo.py trains each run in a process of its own, as always.)
IN_PROCESS = ('tools/train.py', 'tools/test.py', 'tools/convert_student.py',
              'tools/check_ops.py', 'tools/demo.py', 'tools/deploy.py',
              '.mim/tools/train.py', '.mim/tools/test.py')


def run_tool(args: Sequence[str], check: bool = True, timeout: int = 900,
             env: Optional[Dict[str, str]] = None, process: bool = False
             ) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the repository root (``env``: variables
    to set on top of this process's).

    The tools of :data:`IN_PROCESS` run in this process (a fresh
    interpreter's start costs a tool ~10 s of imports), unless ``process``
    asks for a new one; the rest always get one.
    """
    if not process and args[0].endswith(IN_PROCESS):
        proc = run_in_process(args, env)
    else:
        proc = subprocess.run([sys.executable, *args], cwd=REPO,
                              env=tool_env(env), capture_output=True,
                              text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{" ".join(args)} failed ({proc.returncode}):\n'
            f'{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}')
    return proc


def _managed_classes() -> list:
    """MMEngine's globally accessible classes (MMLogger, MessageHub,
    Visualizer, DefaultScope, ...), each with its own instances."""
    from mmengine.utils import ManagerMixin
    found, todo = [], [ManagerMixin]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def run_in_process(args: Sequence[str],
                   env: Optional[Dict[str, str]] = None
                   ) -> subprocess.CompletedProcess:
    """Run the script ``args[0]`` as ``__main__`` in this process, as a new
    interpreter would run it, and return what the process would have.

    What a new process would start without is set aside and given back
    afterwards: MMEngine's named instances (a run's logger, message hub
    and visualizer are found by a name made of the config's name and the
    second it started), the random generators, torch's determinism and
    thread count, the environment, ``sys.argv``, ``sys.path`` (with
    ``PYTHONPATH`` of ``env`` in front) and the working folder.
    Output goes to the returned ``stdout`` and ``stderr``; an exception
    that ends the script is printed to ``stderr`` with exit code 1, as
    Python prints it.
    """
    import contextlib
    import gc
    import io
    import logging
    import random
    import runpy
    import traceback
    import warnings

    import numpy as np
    import torch

    classes = _managed_classes()
    instances = {cls: dict(cls._instance_dict) for cls in classes}
    saved = dict(argv=sys.argv, path=list(sys.path),
                 environ=dict(os.environ), cwd=os.getcwd(),
                 threads=torch.get_num_threads(),
                 deterministic=torch.are_deterministic_algorithms_enabled(),
                 cudnn=(torch.backends.cudnn.benchmark,
                        torch.backends.cudnn.deterministic),
                 torch_rng=torch.random.get_rng_state(),
                 np_rng=np.random.get_state(), rng=random.getstate())
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    for cls in classes:
        cls._instance_dict.clear()
    os.environ.update(tool_env(env))  # for the processes it starts
    torch.set_num_threads(int(THREADS))
    sys.argv = [str(a) for a in args]
    # PYTHONPATH as a new interpreter reads it: before site-packages.
    sys.path[1:1] = [p for p in (env or {}).get('PYTHONPATH', '').split(
        os.pathsep) if p]
    os.chdir(REPO)
    try:
        with contextlib.redirect_stdout(stdout), \
                contextlib.redirect_stderr(stderr), \
                warnings.catch_warnings():
            warnings.simplefilter('ignore')
            try:
                runpy.run_path(args[0], run_name='__main__')
            except SystemExit as exit_:
                if isinstance(exit_.code, str):
                    print(exit_.code, file=sys.stderr)
                code = exit_.code if isinstance(exit_.code, int) else (
                    0 if exit_.code is None else 1)
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        for cls in classes:
            for instance in cls._instance_dict.values():
                if isinstance(instance, logging.Logger):
                    for handler in instance.handlers:
                        handler.close()
            cls._instance_dict.clear()
            cls._instance_dict.update(instances[cls])
        os.chdir(saved['cwd'])
        sys.argv, sys.path[:] = saved['argv'], saved['path']
        os.environ.clear()
        os.environ.update(saved['environ'])
        torch.set_num_threads(saved['threads'])
        torch.use_deterministic_algorithms(saved['deterministic'])
        (torch.backends.cudnn.benchmark,
         torch.backends.cudnn.deterministic) = saved['cudnn']
        torch.random.set_rng_state(saved['torch_rng'])
        np.random.set_state(saved['np_rng'])
        random.setstate(saved['rng'])
        gc.collect()  # the run's models
        # What outlived the run (the packages it imported) out of later
        # collections, as the conftest does at each module's start.
        gc.freeze()
    return subprocess.CompletedProcess(args, code, stdout.getvalue(),
                                       stderr.getvalue())


def run_logs(work_dir: str) -> List[str]:
    """The scalar log of each run under ``work_dir``, oldest first
    (<timestamp>.json from LoggerHook; scalars.json repeats it)."""
    return sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', '2*.json')))


def read_log(path: str) -> List[Dict[str, float]]:
    """The rows of one scalar log."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_scalars(work_dir: str) -> List[Dict[str, float]]:
    """The train/val scalars MMEngine logged under ``work_dir``."""
    return [row for path in run_logs(work_dir) for row in read_log(path)]


def losses(work_dir: Optional[str], rows: Optional[List[dict]] = None
           ) -> Dict[int, Dict[str, float]]:
    """{iteration: {logged loss or distillation value: value}} of every run
    under ``work_dir`` (or of the logged ``rows``)."""
    rows = read_scalars(work_dir) if rows is None else rows
    return {r['iter']: {k: v for k, v in r.items()
                        if k.startswith(('loss', 'student.', 'distill.'))}
            for r in rows if 'loss' in r}


def last_run_losses(work_dir: str) -> Dict[int, Dict[str, float]]:
    """:func:`losses` of the newest run under ``work_dir`` alone (after a
    resume, the resumed run's)."""
    return losses(None, read_log(run_logs(work_dir)[-1]))


def batches(work_dir: str) -> Dict[tuple, list]:
    """{(iteration, rank): images} as tests/record_batches.py wrote them (a
    resumed run's lines come after the killed one's and replace them)."""
    with open(osp.join(work_dir, 'batches.jsonl')) as f:
        rows = [json.loads(line) for line in f]
    return {(r['iter'], r['rank']): r['images'] for r in rows}


def _start_train(args: Sequence[str], env: Dict[str, str],
                 out: str) -> tuple:
    """Start tools/train.py with ``args`` in a new process whose output
    goes to the file ``out``; return its pid and its Popen (None for a
    fork). The process is a fork of this one where torch runs one thread
    here (the suite's workers: a fork skips a new interpreter's ~10 s of
    imports, and one after multi-threaded OpenMP work would hang), else a
    new interpreter."""
    import torch
    if torch.get_num_threads() != 1:
        with open(out, 'w') as f:
            proc = subprocess.Popen(
                [sys.executable, 'tools/train.py', *args], cwd=REPO,
                env=tool_env(env), stdout=f, stderr=subprocess.STDOUT)
        return proc.pid, proc
    pid = os.fork()
    if pid == 0:  # the child: run, write what it said, leave at once
        code = 1
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            done = run_in_process(['tools/train.py', *args], env)
            with open(out, 'w') as f:
                f.write(done.stdout + done.stderr)
            code = done.returncode
        finally:
            os._exit(code)
    return pid, None


def kill_during(work_dir: str, args: Sequence[str], iteration: int,
                timeout: int = 600, env: Optional[Dict[str, str]] = None,
                in_save: bool = False) -> int:
    """Start tools/train.py with ``args`` (:func:`_start_train`), a config
    with tests.record_batches' ``TestPauseHook``; SIGKILL it where the hook
    holds it: after ``iteration`` (as logged) or, with ``in_save``, in the
    save of that iteration's checkpoint before a byte is written. Return
    its exit code as subprocess gives it (minus the signal)."""
    import tempfile

    from tests.record_batches import PAUSED
    name = 'TEST_PAUSE_IN_SAVE_OF_ITER' if in_save else 'TEST_PAUSE_AFTER_ITER'
    fd, out = tempfile.mkstemp(suffix='.log')
    os.close(fd)
    # (Popen kept: reaped by us, not by subprocess's clean-up.)
    pid, popen = _start_train(args, {name: str(iteration), **(env or {})},
                              out)
    deadline, status = time.time() + timeout, None
    try:
        while not osp.exists(osp.join(work_dir, PAUSED)):
            ended, status = os.waitpid(pid, os.WNOHANG)
            if ended:
                with open(out) as f:
                    raise AssertionError('training ended before the kill:'
                                         f'\n{f.read()[-4000:]}')
            status = None
            assert time.time() < deadline, 'training did not get there'
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        if status is None:  # still running
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        os.remove(out)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else \
        os.WEXITSTATUS(status)
    if popen is not None:
        popen.returncode = code  # reaped here: nothing left to wait for
    return code


def read_test_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics that a test run wrote (work_dir/<timestamp>/<ts>.json)."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    assert paths, f'no test metrics under {work_dir}'
    with open(paths[-1]) as f:
        metrics = json.load(f)
    return {k: v for k, v in metrics.items() if k not in ('time', 'data_time')}


def coco_options(root: str, size: int = 128) -> List[str]:
    """--cfg-options that point a stock COCO config at ``root`` and shrink
    it for CPU: image size, one worker-less epoch, logging every iteration.
    """
    root = root.rstrip('/') + '/'
    ann = root + 'annotations/instances_val2017.json'
    scale = f'({size},{size})'
    options = [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]
    options += [
        f'val_evaluator.ann_file={ann}',
        f'test_evaluator.ann_file={ann}',
        f'train_dataloader.dataset.pipeline.2.scale={scale}',
        f'val_dataloader.dataset.pipeline.1.scale={scale}',
        f'test_dataloader.dataset.pipeline.1.scale={scale}',
        'train_dataloader.batch_size=2',
    ]
    for split in ('train', 'val', 'test'):
        options += [
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False'
        ]
    options += ['train_cfg.max_epochs=1', 'default_hooks.logger.interval=1']
    return options


def cityscapes_options(root: str) -> List[str]:
    """--cfg-options that point a stock Cityscapes config at ``root`` and
    shrink it for CPU: 64 x 128 crops of 128 x 256 images, 2 iterations."""
    root = root.rstrip('/') + '/'
    options = [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]
    options += [
        'train_dataloader.dataset.pipeline.2.scale=(256,128)',
        'train_dataloader.dataset.pipeline.3.crop_size=(64,128)',
        # The runner hands the top-level preprocessor to the algorithm.
        'data_preprocessor.size=(64,128)',
        'val_dataloader.dataset.pipeline.1.scale=(256,128)',
        'test_dataloader.dataset.pipeline.1.scale=(256,128)',
        'train_dataloader.batch_size=2',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=2',
    ]
    for split in ('train', 'val', 'test'):
        options += [
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False'
        ]
    return options


def save_random_model(cfg_path: str, path: str, seed: int = 0) -> str:
    """Save the weights of a randomly initialised model of a stock config
    (``'mmdet::...'``) or of a config file."""
    import torch
    from mmengine.hub import get_model

    import mmdist  # noqa: F401
    torch.manual_seed(seed)
    if '::' in cfg_path:
        model = get_model(cfg_path, pretrained=False)
    else:
        from mmengine.config import Config

        from mmdist.apis.check_ops import build_random_model
        model = build_random_model(Config.fromfile(cfg_path))
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def mim_path(package: str, *parts: str) -> str:
    """A file shipped inside an installed OpenMMLab package (.mim/...)."""
    import importlib
    module = importlib.import_module(package)
    return osp.join(osp.dirname(module.__file__), '.mim', *parts)


def check_stock_tool_agrees(config: str, checkpoint: str, package: str,
                            stock_config: str, options: List[str],
                            student_options: List[str], tmp_dir: str,
                            stock_out: str,
                            compare_predictions) -> Dict[str, float]:
    """Convert the student, then evaluate it with the package's own test tool
    and the distillation checkpoint with tools/test.py; both must agree.

    Args:
        config: The distillation config.
        checkpoint: A checkpoint of it.
        package: 'mmdet' or 'mmseg'.
        stock_config: The student's stock config, relative to .mim/configs.
        options: --cfg-options for both tools (data, sizes).
        student_options: --cfg-options for the student, given without the
            'model.' / 'model.architecture.' prefix.
        tmp_dir: Where to write.
        stock_out: The --out of the stock tool, under tmp_dir (mmdet: a
            .pkl file, mmseg: a folder of predicted label maps).
        compare_predictions: Called with our predictions (a list) and the
            path of the stock tool's.

    Returns:
        The metrics.
    """
    import pickle

    import torch
    student = osp.join(tmp_dir, 'student.pth')
    run_tool(['tools/convert_student.py', checkpoint, student])
    converted = torch.load(student, map_location='cpu', weights_only=True)
    assert converted['state_dict'] and not any(
        k.startswith(('architecture.', 'teacher.', 'distiller.'))
        for k in converted['state_dict'])
    ours_pkl, theirs_out = osp.join(tmp_dir, 'ours.pkl'), osp.join(
        tmp_dir, stock_out)
    run_tool(['tools/test.py', config, checkpoint, '--work-dir',
              osp.join(tmp_dir, 'ours'), '--out', ours_pkl,
              '--cfg-options', *options,
              *[f'model.architecture.{o}' for o in student_options]])
    run_tool([mim_path(package, 'tools', 'test.py'),
              mim_path(package, 'configs', stock_config), student,
              '--work-dir', osp.join(tmp_dir, 'theirs'), '--out', theirs_out,
              '--cfg-options', *options,
              *[f'model.{o}' for o in student_options]])
    ours = read_test_metrics(osp.join(tmp_dir, 'ours'))
    theirs = read_test_metrics(osp.join(tmp_dir, 'theirs'))
    assert ours and ours == theirs
    with open(ours_pkl, 'rb') as f:
        predictions = pickle.load(f)
    assert predictions
    compare_predictions(predictions, theirs_out)
    return ours


def compare_detections(ours: list, theirs_pkl: str) -> None:
    """Both tools predicted the same boxes, scores and labels."""
    import pickle

    import torch
    with open(theirs_pkl, 'rb') as f:
        theirs = pickle.load(f)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert len(a['pred_instances']['scores']) > 0
        for key in ('bboxes', 'scores', 'labels'):
            torch.testing.assert_close(a['pred_instances'][key],
                                       b['pred_instances'][key])


def compare_label_maps(ours: list, theirs_dir: str) -> None:
    """mmseg's tool wrote the same label maps as our predictions hold."""
    import cv2
    import numpy as np
    for prediction in ours:
        name = osp.splitext(osp.basename(prediction['img_path']))[0]
        theirs = cv2.imread(osp.join(theirs_dir, name + '.png'),
                            cv2.IMREAD_UNCHANGED)
        assert theirs is not None, name
        mine = prediction['pred_sem_seg']['data'][0].numpy()
        np.testing.assert_array_equal(mine, theirs)


#: What mmdist's own install puts into site-packages.
MMDIST_INSTALLED = ('mmdist', '_mmdist_mmcv_ext', '__editable__.mmdist',
                    '__editable___mmdist', '__pycache__')


def fresh_venv(path: str, leave_out: Sequence[str] = MMDIST_INSTALLED
               ) -> str:
    """A new virtual environment at ``path`` that sees this environment's
    packages, less those whose names start with one of ``leave_out``: its
    site-packages holds one ``.pth`` that names a folder of links to them
    (their own ``.pth`` files are not run); pip and setuptools are this
    environment's too. Returns its Python."""
    import site
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', path],
                   check=True)
    python = osp.join(path, 'bin', 'python')
    view = osp.join(path, 'project-packages')
    os.makedirs(view)
    for folder in site.getsitepackages():
        for name in os.listdir(folder):
            if not name.startswith(tuple(leave_out)) and not osp.exists(
                    osp.join(view, name)):
                os.symlink(osp.join(folder, name), osp.join(view, name))
    site_packages = subprocess.run(
        [python, '-c', 'import site; print(site.getsitepackages()[0])'],
        capture_output=True, text=True, check=True).stdout.strip()
    with open(osp.join(site_packages, 'project-packages.pth'), 'w') as f:
        f.write(view + '\n')
    return python


def copy_checkout(target: str) -> str:
    """A copy of the checkout's sources (what a clone holds), without the
    virtual environment and build leftovers: pip builds and editable
    installs leave files in the folder they get."""
    import shutil
    ignore = shutil.ignore_patterns('.venv', '.git', 'work_dirs', 'build',
                                    '*.egg-info', '__pycache__', 'data')
    shutil.copytree(REPO, target, symlinks=True, ignore=ignore)
    return target


def random_teachers(model_cfg: dict) -> None:
    """No checkpoint for the teachers of a distillation model config (one
    or several), in place: they keep their random weights."""
    if 'teacher_ckpt' in model_cfg or 'teacher' in model_cfg:
        model_cfg['teacher_ckpt'] = None
    for teacher in (model_cfg.get('teachers') or {}).values():
        teacher['ckpt'] = None


def distill_loss_names(model_cfg: dict) -> set:
    """The distillation losses a model config logs (without 'distill.'):
    its loss mappings', and each logits entry's ``loss_<name>``, or, with
    several teachers taught one by one, ``loss_<name>_<teacher>``."""
    distiller = model_cfg['distiller']
    names = set(distiller.get('distill_losses') or {})
    for name, spec in (distiller.get('logits') or {}).items():
        teachers = spec.get('teachers')
        if teachers and spec.get('combine', 'per_teacher') == 'per_teacher':
            names |= {f'loss_{name}_{teacher}' for teacher in teachers}
        else:
            names.add(f'loss_{name}')
    return names


def run_ranks(target, world_size: int, folder: str, *args) -> list:
    """Run ``target(rank, world_size, init_file, *args)`` in ``world_size``
    new processes that form a gloo process group (a file store in
    ``folder``); return what each rank's ``target`` returned, by rank.

    The processes are forks of this one where torch runs one thread here
    (the suite's workers: no new interpreter's imports), else new
    interpreters (a fork after multi-threaded OpenMP work hangs), so
    ``target`` must be importable.
    """
    import multiprocessing

    import torch
    method = 'fork' if torch.get_num_threads() == 1 else 'spawn'
    context = multiprocessing.get_context(method)
    init_file = osp.join(folder, 'gloo_store')
    with context.Pool(world_size) as pool:
        results = [pool.apply_async(target, (rank, world_size, init_file,
                                             *args))
                   for rank in range(world_size)]
        return [r.get(timeout=300) for r in results]


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it. torchrun starts its
    workers in sessions of their own: killing the launcher's process group
    leaves them (and their data-loader workers) running."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                # pid (comm) state ppid ...: comm may hold spaces.
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass
