"""What tools/train.py and tools/test.py share around MMEngine's Runner."""
import argparse
import contextlib
import gc
import os
import os.path as osp
import shutil
import subprocess
from typing import Iterator, List, Optional

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.runner import Runner

import mmdist  # noqa: F401  compat fixes and registries

# How to get each data set, by dataset type.
DATA_HINTS = {
    'CocoDataset': (
        'COCO is expected under data/coco: annotations/instances_train2017.'
        'json, annotations/instances_val2017.json, train2017/ and val2017/ '
        '(https://cocodataset.org). Link it there (ln -s /path/to/coco '
        'data/coco) or point the config elsewhere, e.g. --cfg-options '
        'train_dataloader.dataset.data_root=/path/to/coco/ '
        'val_dataloader.dataset.data_root=/path/to/coco/ '
        'test_dataloader.dataset.data_root=/path/to/coco/ '
        'val_evaluator.ann_file=/path/to/coco/annotations/'
        'instances_val2017.json test_evaluator.ann_file=/path/to/coco/'
        'annotations/instances_val2017.json'),
    'CityscapesDataset': (
        'Cityscapes is expected under data/cityscapes: leftImg8bit/{train,'
        'val}/<city>/*_leftImg8bit.png and gtFine/{train,val}/<city>/'
        '*_gtFine_labelTrainIds.png (https://www.cityscapes-dataset.com). '
        'The labelTrainIds files are made from the downloaded gtFine '
        'polygons by mmseg\'s converter: pip install cityscapesscripts; '
        'python $(python -c "import mmseg, os; print(os.path.dirname('
        'mmseg.__file__))")/.mim/tools/dataset_converters/cityscapes.py '
        'data/cityscapes --nproc 8. Or point the config elsewhere, e.g. '
        '--cfg-options train_dataloader.dataset.data_root=/path/to/'
        'cityscapes/ val_dataloader.dataset.data_root=/path/to/cityscapes/ '
        'test_dataloader.dataset.data_root=/path/to/cityscapes/'),
    'ImageNet': (
        'ImageNet is expected under data/imagenet as mmpretrain reads it: '
        'train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (one folder per class), '
        'or the images in train/ and val/ listed in meta/train.txt and '
        'meta/val.txt (https://image-net.org). Link it there (ln -s '
        '/path/to/imagenet data/imagenet) or point the config elsewhere, '
        'e.g. --cfg-options train_dataloader.dataset.data_root=/path/to/'
        'imagenet val_dataloader.dataset.data_root=/path/to/imagenet '
        'test_dataloader.dataset.data_root=/path/to/imagenet'),
}


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """The flags that every tool shares with mmdet's and mmseg's tools."""
    parser.add_argument('--work-dir', help='where logs and outputs go')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (xxx=yyy format)')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` and apply the shared flags to it.

    work_dir comes from --work-dir, else the config, else
    ./work_dirs/<config name>.
    """
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def _datasets(cfg: Config, loaders: List[str]) -> Iterator[ConfigDict]:
    for name in loaders:
        loader = cfg.get(name)
        if not loader:
            continue
        stack = [loader.get('dataset')]
        while stack:
            dataset = stack.pop()
            if isinstance(dataset, (list, tuple)):
                stack.extend(dataset)
            elif isinstance(dataset, dict):
                inner = dataset.get('dataset', dataset.get('datasets'))
                if inner is not None:  # RepeatDataset, ConcatDataset, ...
                    stack.append(inner)
                else:
                    yield dataset


def evaluator_metrics(evaluator: Optional[object]) -> List[dict]:
    """The metric configs of an evaluator config: one metric or a list."""
    if evaluator is None:
        return []
    return list(evaluator) if isinstance(evaluator, (list, tuple)) else [
        evaluator]


def _evaluator_files(cfg: Config, loaders: List[str]) -> Iterator[str]:
    for name in loaders:
        evaluator = cfg.get(name.replace('dataloader', 'evaluator'))
        for metric in evaluator_metrics(evaluator):
            if isinstance(metric, dict) and metric.get('ann_file'):
                yield metric['ann_file']


def check_data(cfg: Config, loaders: List[str]) -> None:
    """Check that the data of the given dataloaders is where the config says.

    Args:
        cfg: The config.
        loaders: Names such as 'train_dataloader'; their evaluators'
            annotation files are checked too.

    Raises:
        FileNotFoundError: With the missing paths and how to provide them.
    """
    missing, types = [], set()
    for ann_file in _evaluator_files(cfg, loaders):
        if not osp.exists(ann_file) and ann_file not in missing:
            missing.append(ann_file)
    for dataset in _datasets(cfg, loaders):
        root = dataset.get('data_root') or ''
        paths = [dataset.get('ann_file') or '']
        prefix = dataset.get('data_prefix') or {}
        if isinstance(prefix, str):  # mmpretrain: one image folder
            prefix = dict(img=prefix)
        paths += [p for p in prefix.values() if isinstance(p, str)]
        # mmpretrain's ImageNet: the images of a split are in <root>/<split>.
        if dataset.get('split') and not prefix:
            paths.append(dataset['split'])
        for path in paths:
            full = osp.join(root, path) if path else ''
            if full and not osp.exists(full) and full not in missing:
                missing.append(full)
                types.add(str(dataset.get('type', '')).split('.')[-1])
    if missing:
        hints = ' '.join(DATA_HINTS[t] for t in sorted(types)
                         if t in DATA_HINTS)
        raise FileNotFoundError(
            'data not found: ' + ', '.join(missing) + '. ' + hints)


def check_local_file(path: Optional[str], what: str, option: str) -> None:
    """Fail early for a local file (not a URL) that is missing."""
    if path and '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(
            f'{what} not found: {path}. Point the config at it with '
            f'--cfg-options {option}=/path/to/file.pth')


def check_load_from(cfg: Config) -> None:
    """Stop when ``load_from`` (or ``--resume FILE``) gives a distillation
    model a checkpoint of the student alone.

    A stock mmdet/mmseg/mmpretrain checkpoint holds ``backbone.``, ...
    keys, and a distillation model's are ``architecture.``, ...: MMEngine
    would load none of them and only warn, and the student would silently
    start from its initialisation (open-mmlab/mmrazor#613). Such weights
    belong in ``model.student_ckpt``.

    Raises:
        ValueError: Naming the file and ``model.student_ckpt``.
    """
    path, model = cfg.get('load_from'), cfg.get('model') or {}
    if (not path or '://' in path or not osp.isfile(path)
            or not isinstance(model, dict) or 'architecture' not in model):
        return
    try:  # the keys only: mapped, not read
        checkpoint = torch.load(path, map_location='cpu', mmap=True,
                                weights_only=True)
    except Exception:
        return  # not a file torch can map; MMEngine will say what it is
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else {}
    keys = [k[len('module.'):] if k.startswith('module.') else k
            for k in state_dict]
    if keys and not any(k.startswith('architecture.') for k in keys):
        option = 'resume' if cfg.get('resume') else 'load_from'
        raise ValueError(
            f'{option}={path} holds the weights of a model alone (keys such '
            f'as {keys[0]!r}), not of a distillation run (\'architecture.\', '
            '\'distiller.\'): MMEngine would load none of them into this '
            'distillation model, and the student would start from its '
            'initialisation. To start the student from these weights, give '
            f'them as --cfg-options model.student_ckpt={path} (without '
            'load_from or --resume); to continue a distillation run, give '
            'one of its checkpoints.')


def slurm_environment() -> None:
    """Set torch.distributed's variables from slurm's, as MMEngine's slurm
    launcher does (rank, world size, local rank; the first host of the job
    as the master, found with ``scontrol``; port ``MASTER_PORT`` or 29500).

    Raises:
        RuntimeError: Not inside a slurm task (no ``SLURM_PROCID``).
    """
    if 'SLURM_PROCID' not in os.environ:
        raise RuntimeError(
            '--launcher slurm runs inside slurm tasks (srun, as '
            'tools/slurm_train.sh starts them), and SLURM_PROCID is not set')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        hosts = subprocess.run(
            ['scontrol', 'show', 'hostname', os.environ['SLURM_NODELIST']],
            capture_output=True, text=True, check=True).stdout.split()
        os.environ['MASTER_ADDR'] = hosts[0]


@contextlib.contextmanager
def cpu_distributed(cfg: Config, launcher: str) -> Iterator[None]:
    """Let ``--launcher pytorch`` or ``slurm`` run on CPU-only machines
    (gloo).

    MMEngine 0.10.7 calls torch.cuda.set_device in its launcher and gives DDP
    device_ids=[local_rank]; both fail without CUDA. The process group is
    started here, so MMEngine skips its own set-up, and DDP gets
    device_ids=None, which it needs for a CPU module. MMEngine's default
    wrapper becomes ``mmdist.CPUDistributedDataParallel``, under which
    SyncBN layers (every mmseg and mmyolo config has them), which torch
    runs on GPUs only, share their batch statistics over gloo as they do
    between GPUs (:mod:`mmdist.models.layers.sync_bn`). On the way out the
    ranks wait for each other, the group is destroyed and what still holds
    it is freed: a rank that tears gloo down while another still talks to
    it, or leaves its threads to interpreter exit, can abort ("terminate
    called without an active exception").
    """
    if launcher == 'none' or torch.cuda.is_available():
        yield
        return
    import torch.distributed as dist
    started = not dist.is_initialized()
    if started:
        if launcher == 'slurm':
            slurm_environment()
        dist.init_process_group(backend='gloo')
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict()
    if _type_name(wrapper) in ('', 'MMDistributedDataParallel'):
        wrapper.type = 'mmdist.CPUDistributedDataParallel'
    wrapper.device_ids = None
    cfg.model_wrapper_cfg = wrapper
    yield
    if started:
        dist.barrier()
        dist.destroy_process_group()
        # The Runner, its DDP wrapper and hooks form reference cycles that
        # keep the group, its gloo threads and rank 0's store server alive
        # past destroy_process_group. Left to interpreter exit, their
        # teardown aborts now and then: free them while Python is whole.
        gc.collect()


@contextlib.contextmanager
def cleanup_on_failure(work_dir: str) -> Iterator[None]:
    """Remove what a failing block created in ``work_dir``, then re-raise.

    The Runner creates its work and log directories before it builds the
    model; a bad teacher checkpoint found then should leave nothing behind.
    """
    existed = osp.isdir(work_dir)
    before = set(os.listdir(work_dir)) if existed else set()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(work_dir, ignore_errors=True)
        elif osp.isdir(work_dir):
            for name in set(os.listdir(work_dir)) - before:
                path = osp.join(work_dir, name)
                if osp.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)
        raise


# MMEngine's train samplers and mmdist's versions of them, which yield
# indices that carry their seed (mmdist.datasets.resumable).
SEEDED_SAMPLERS = {
    'InfiniteSampler': 'mmdist.ResumableInfiniteSampler',
    'DefaultSampler': 'mmdist.SeededDefaultSampler',
}


def _type_name(cfg: Optional[dict]) -> str:
    """The class name of a config's ``type``, without its scope."""
    return str((cfg or {}).get('type', '')).split('.')[-1]


def make_resumable(cfg: Config) -> None:
    """Make a training run resume exactly, and in seconds, in place.

    With ``resume_mode='fast'`` (the default of mmdist's tools): MMEngine's
    ``IterBasedTrainLoop`` becomes mmdist's ``ResumableIterBasedTrainLoop``
    (the sampler skips what was trained instead of a replay), the train
    sampler, MMEngine's ``InfiniteSampler`` or ``DefaultSampler``, mmdist's
    version of it, and the train dataset is wrapped in
    ``mmdist.PositionSeededDataset``: every sample loads under a seed made
    of the run's seed, the rank and its position in the rank's stream.
    A sampler of another type is left alone (and an iteration-based run
    then replays on resume). MMEngine's ``CheckpointHook`` becomes
    ``mmdist.AtomicCheckpointHook``, so that a run killed while it saves
    still has a checkpoint to resume from. An epoch-based run also gets
    ``mmdist.MixCacheReplayHook``: on resume, the image caches of mix
    transforms (RTMDet's Mosaic and MixUp) are refilled as the
    uninterrupted run filled them (``mix_cache_history='window'`` or
    ``'full'``, see :mod:`mmdist.datasets.mix_cache`).
    ``resume_mode='replay'`` changes nothing: MMEngine's own behaviour.

    Raises:
        ValueError: Another ``resume_mode``.
    """
    mode = cfg.get('resume_mode', 'fast')
    if mode not in ('fast', 'replay'):
        raise ValueError(f"resume_mode={mode!r}: use 'fast' (mmdist's "
                         "sampler skip and per-sample seeds) or 'replay' "
                         "(MMEngine's replay of the trained batches)")
    loader, train_cfg = cfg.get('train_dataloader'), cfg.get('train_cfg')
    if mode == 'replay' or not loader or not train_cfg:
        return
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if _type_name(checkpoint) == 'CheckpointHook':
        checkpoint.type = 'mmdist.AtomicCheckpointHook'
        checkpoint.pop('_scope_', None)
    loop = _type_name(train_cfg)
    # MMEngine builds an IterBasedTrainLoop for by_epoch=False, no type.
    if loop == 'IterBasedTrainLoop' or (
            not loop and train_cfg.get('by_epoch') is False):
        train_cfg.pop('by_epoch', None)
        train_cfg.type = 'mmdist.ResumableIterBasedTrainLoop'
    sampler = loader.get('sampler') or {}
    seeded = SEEDED_SAMPLERS.get(_type_name(sampler))
    if seeded and loader.get('dataset'):
        sampler.type = seeded
        sampler.pop('_scope_', None)
        loader.dataset = ConfigDict(type='mmdist.PositionSeededDataset',
                                    dataset=loader.dataset)
        if seeded == SEEDED_SAMPLERS['DefaultSampler']:
            # Epoch-based: mix transforms' image caches refilled on resume.
            cfg.custom_hooks = [*(cfg.get('custom_hooks') or []), ConfigDict(
                type='mmdist.MixCacheReplayHook',
                history=cfg.get('mix_cache_history', 'window'))]


def build_runner(cfg: Config) -> Runner:
    """Build the Runner, leaving nothing in work_dir if that fails."""
    with cleanup_on_failure(cfg.work_dir):
        return Runner.from_cfg(cfg)
