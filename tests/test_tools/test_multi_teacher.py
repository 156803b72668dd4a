"""Two teachers at once through the tools, on the demo's Cityscapes-layout
set-up with two local teacher checkpoints (R18-D8 models of two seeds): the
losses are the per-teacher and ensemble formulas written out in float64;
each teacher's metric at the first validation and from tools/test.py
--teacher NAME; a run killed and resumed logs the uninterrupted run's
losses; a teacher whose file changed in between stops the resume, naming it
and both hashes, unless allowed; a teacher of other classes or anchors
stops before any work, naming it."""
import copy
import json
import os.path as osp
import signal

import pytest
import torch

from mmdist.datasets import make_cityscapes
from tests.utils import (REPO, kill_during, last_run_losses, losses,
                         read_scalars, read_test_metrics, run_tool,
                         save_random_model)

TEACHER = f'{REPO}/configs/demo/deeplabv3_r18_toy.py'
CONFIG = '''_base_ = '{repo}/configs/demo/dist_deeplabv3_r18_toy.py'
custom_imports = dict(imports=['mmdist', 'tests.record_batches'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='TestPauseHook')]
model = dict(
    teacher=None, teacher_ckpt=None,
    teachers=dict(a=dict(cfg_path='{teacher}', ckpt='{a}'),
                  b=dict(cfg_path='{teacher}', ckpt='{b}')),
    distiller=dict(logits=dict(
        _delete_=True,
        decode=dict(
            student='decode_head.conv_seg',
            teachers=dict(a='decode_head.conv_seg',
                          b=dict(module='decode_head.conv_seg', weight=0.5)),
            combine='{combine}',
            loss=dict(type='mmdist.DISTLoss', log_terms=True)),
        aux=dict(student='auxiliary_head.conv_seg',
                 teachers=dict(a='auxiliary_head.conv_seg'),
                 loss=dict(type='mmdist.DISTLoss', loss_weight=0.4)))))
data_root = '{root}/'
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=6, val_interval=2)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=2, max_keep_ckpts=3))
randomness = dict(seed=0, deterministic=True)
'''
ENV = dict(PYTHONPATH=REPO)  # tests.record_batches


@pytest.fixture(scope='module')
def setup(module_tmp):
    tmp = module_tmp('multi_teacher')
    root = str(tmp / 'cityscapes')
    make_cityscapes(root, num_train=6, num_val=2, image_size=(64, 128))
    ckpts = {name: save_random_model(TEACHER, str(tmp / f'{name}.pth'), seed)
             for name, seed in (('a', 1), ('b', 2))}
    configs = {}
    for combine in ('per_teacher', 'ensemble'):
        path = tmp / f'dist_two_{combine}.py'
        path.write_text(CONFIG.format(repo=REPO, teacher=TEACHER, root=root,
                                      combine=combine, **ckpts))
        configs[combine] = str(path)
    return dict(tmp=tmp, root=root, ckpts=ckpts, configs=configs)


def build(config):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmdist.registry import MODELS
    cfg = Config.fromfile(config)
    init_default_scope('mmrazor')
    torch.manual_seed(0)
    model = MODELS.build(dict(cfg.model, data_preprocessor=dict(
        cfg.data_preprocessor, type='mmseg.SegDataPreProcessor')))
    return model.double()


def dist_written_out(s, probs_t, beta=1.0, gamma=1.0):
    """DIST on rows (positions) of softmax probabilities, float64."""
    def rows(x):
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])

    def corr(a, b, dim):
        a = a - a.mean(dim, keepdim=True)
        b = b - b.mean(dim, keepdim=True)
        return (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim) + 1e-8)
    p, q = rows(torch.softmax(s, 1)), rows(probs_t)
    return beta * (1 - corr(p, q, 1).mean()) + gamma * (
        1 - corr(p, q, 0).mean())


@pytest.mark.parametrize('combine', ['per_teacher', 'ensemble'])
def test_losses_are_the_formulas_in_float64(setup, combine):
    from mmdist.testing import SETTINGS, make_batch
    model = build(setup['configs'][combine])
    model.train()
    seg = next(s for s in SETTINGS if s.task == 'seg')
    data = model.data_preprocessor(make_batch(seg, 2, (64, 128)), True)
    with torch.no_grad():
        losses = model.loss(data['inputs'].double(), data['data_samples'])
    distiller = model.distiller
    student = distiller.student_recorders.get_recorder(
        'logits_decode').data_buffer[0]
    teacher = {name: distiller.teacher_recorders.get_recorder(
        f'logits_decode.{name}').data_buffer[0] for name in 'ab'}
    assert student.dtype == torch.float64
    assert not torch.equal(teacher['a'], teacher['b'])  # two teachers
    if combine == 'per_teacher':
        for name, weight in (('a', 1.0), ('b', 0.5)):
            expected = weight * dist_written_out(
                student, torch.softmax(teacher[name], 1))
            torch.testing.assert_close(
                losses[f'distill.loss_decode_{name}'], expected)
        assert 'distill.loss_decode' not in losses
    else:
        mean = (torch.softmax(teacher['a'], 1) +
                0.5 * torch.softmax(teacher['b'], 1)) / 1.5
        torch.testing.assert_close(losses['distill.loss_decode'],
                                   dist_written_out(student, mean))
        assert not any(k.startswith('distill.loss_decode_') for k in losses)
    aux_s = distiller.student_recorders.get_recorder(
        'logits_aux').data_buffer[0]
    aux_t = distiller.teacher_recorders.get_recorder(
        'logits_aux.a').data_buffer[0]
    torch.testing.assert_close(
        losses['distill.loss_aux_a'],
        0.4 * dist_written_out(aux_s, torch.softmax(aux_t, 1)))


@pytest.fixture(scope='module')
def uninterrupted(setup):
    work_dir = str(setup['tmp'] / 'whole')
    run_tool(['tools/train.py', setup['configs']['per_teacher'],
              '--work-dir', work_dir], env=ENV)
    return work_dir


def test_each_teacher_is_logged_and_evaluated(setup, uninterrupted):
    rows = read_scalars(uninterrupted)
    train = [r for r in rows if 'loss' in r]
    assert len(train) == 6
    for row in train:
        for key in ('distill.loss_decode_a', 'distill.loss_decode_b',
                    'distill.loss_aux_a', 'distill.decode_a_inter',
                    'distill.decode_b_intra'):
            assert key in row and row[key] == row[key]  # finite, logged
    first = next(r for r in rows if 'mIoU' in r)
    for name in 'ab':
        metric = first[f'teacher/{name}/mIoU']
        # tools/test.py --teacher NAME: the same teacher, the same data.
        work_dir = str(setup['tmp'] / f'test_{name}')
        run_tool(['tools/test.py', setup['configs']['per_teacher'],
                  '--teacher', name, '--work-dir', work_dir], env=ENV)
        assert read_test_metrics(work_dir)['mIoU'] == metric
    result = run_tool(['tools/test.py', setup['configs']['per_teacher'],
                       '--teacher', '--work-dir',
                       str(setup['tmp'] / 'test_none')], check=False,
                      env=ENV)
    assert result.returncode != 0
    assert "several teachers: name one, --teacher <name> with <name> one " \
        "of ['a', 'b']" in result.stderr
    # The checkpoints leave both teachers out (building loads them).
    state = torch.load(osp.join(uninterrupted, 'iter_6.pth'),
                       map_location='cpu', weights_only=False)['state_dict']
    assert not any(k.startswith('teacher.') for k in state)
    # As a tensor, since the Runner broadcasts every state-dict entry.
    assert isinstance(state['_extra_state'], torch.Tensor)
    saved = json.loads(bytes(state['_extra_state'].tolist()))['teachers']
    assert sorted(saved) == ['a', 'b']
    assert saved['a']['ckpt'] == setup['ckpts']['a']


@pytest.mark.slow
def test_killed_and_resumed_logs_the_uninterrupted_losses(setup,
                                                          uninterrupted):
    killed = str(setup['tmp'] / 'killed')
    args = [setup['configs']['per_teacher'], '--work-dir', killed]
    assert kill_during(killed, args, 3, env=ENV) == -signal.SIGKILL
    run_tool(['tools/train.py', *args, '--resume'], env=ENV)
    resumed = last_run_losses(killed)
    expected = {i: v for i, v in losses(uninterrupted).items() if i > 2}
    assert sorted(resumed) == [3, 4, 5, 6]
    assert resumed == expected


def test_a_replaced_teacher_file_stops_the_resume(setup, uninterrupted):
    import hashlib
    import shutil
    work_dir = setup['tmp'] / 'changed'
    shutil.copytree(uninterrupted, work_dir)
    # Teacher b's file replaced by other weights: same path, other bytes.
    other = dict(setup['ckpts'])
    other['b'] = str(setup['tmp'] / 'b_changed.pth')
    save_random_model(TEACHER, other['b'], seed=3)
    before = hashlib.sha256(open(setup['ckpts']['b'], 'rb').read())
    after = hashlib.sha256(open(other['b'], 'rb').read())
    options = ['--cfg-options', f"model.teachers.b.ckpt={other['b']}",
               'train_cfg.max_iters=8']
    result = run_tool(['tools/train.py', setup['configs']['per_teacher'],
                       '--work-dir', str(work_dir), '--resume', *options],
                      check=False, env=ENV)
    assert result.returncode != 0
    message = result.stderr
    assert 'the teacher changed since this checkpoint was saved' in message
    assert "teacher 'b'" in message and "teacher 'a'" not in message
    assert before.hexdigest() in message and after.hexdigest() in message
    assert 'model.allow_teacher_change=True' in message
    assert not osp.exists(work_dir / 'iter_8.pth')
    # On purpose: it goes on with the new teacher, and says so.
    run_tool(['tools/train.py', setup['configs']['per_teacher'],
              '--work-dir', str(work_dir), '--resume', *options,
              'model.allow_teacher_change=True'], env=ENV)
    assert osp.exists(work_dir / 'iter_8.pth')


@pytest.mark.parametrize('change, said', [
    ('model.teachers.b.decode_head.num_classes=7',
     "teacher 'b' decode_head has num_classes=7"),
])
def test_a_teacher_that_does_not_fit_stops_before_any_work(setup, change,
                                                           said):
    work_dir = setup['tmp'] / 'refused'
    result = run_tool(['tools/train.py', setup['configs']['per_teacher'],
                       '--work-dir', str(work_dir), '--cfg-options',
                       change, 'model.teachers.b.ckpt=None'], check=False,
                      env=ENV)
    assert result.returncode != 0 and said in result.stderr, \
        result.stderr[-2000:]
    assert not work_dir.exists()


def test_teachers_of_another_anchor_layout_are_named():
    # Dense detection: a teacher's anchors must be the student's.
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmdist.registry import MODELS
    from tests.utils import random_teachers
    cfg = Config.fromfile(
        f'{REPO}/configs/dist_retinanet_r50_two-teachers_coco.py')
    random_teachers(cfg.model)
    model = copy.deepcopy(cfg.model)
    model.architecture.backbone.init_cfg = None
    model.teachers.r101.bbox_head = dict(
        anchor_generator=dict(octave_base_scale=8))
    init_default_scope('mmrazor')
    with pytest.raises(ValueError, match="teacher 'r101''s anchor layout "
                       "differs from the student's"):
        MODELS.build(model)
