"""End to end on CPU: configs/dist_deeplabv3_r18_cityscapes.py through the
tools on a generated Cityscapes-layout data set (DeepLabV3 R101-D8 teacher,
R18-D8 student), shrunk through --cfg-options only."""
import math

import pytest

from tests.utils import (check_stock_tool_agrees, cityscapes_options,
                         compare_label_maps, read_scalars, run_tool,
                         save_random_model)

CONFIG = 'configs/dist_deeplabv3_r18_cityscapes.py'
TEACHER = ('mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-'
           '512x1024.py')


@pytest.fixture(scope='module')
def teacher_ckpt(module_tmp) -> str:
    return save_random_model(
        TEACHER, str(module_tmp('teacher') / 'teacher.pth'))


def test_train_convert_and_evaluate(cityscapes_root, teacher_ckpt,
                                    tmp_path):
    work_dir = str(tmp_path / 'work_dir')
    options = cityscapes_options(cityscapes_root)
    run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir,
              '--cfg-options', *options, 'model.architecture.pretrained=None',
              f'model.teacher_ckpt={teacher_ckpt}'])
    rows = [r for r in read_scalars(work_dir) if 'loss' in r]
    assert len(rows) == 2
    for row in rows:
        for head in ('decode', 'aux'):
            for key in (f'distill.loss_{head}', f'distill.{head}_inter',
                        f'distill.{head}_intra'):
                assert math.isfinite(row[key]), (key, row)
    # On the first iteration the logged loss is its two logged terms.
    first = rows[0]
    assert first['distill.loss_aux'] == pytest.approx(
        first['distill.aux_inter'] + first['distill.aux_intra'], abs=1e-4)

    metrics = check_stock_tool_agrees(
        CONFIG, f'{work_dir}/iter_2.pth', 'mmseg',
        'deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py',
        options, [], str(tmp_path), 'theirs', compare_label_maps)
    assert 'mIoU' in metrics


def test_missing_cityscapes_is_explained(tmp_path):
    work_dir = tmp_path / 'work_dir'
    proc = run_tool(['tools/train.py', CONFIG, '--work-dir', str(work_dir),
                     '--cfg-options',
                     f'train_dataloader.dataset.data_root={tmp_path}/none/'],
                    check=False)
    assert proc.returncode != 0
    for text in ('data not found', f'{tmp_path}/none/leftImg8bit/train',
                 'Cityscapes is expected under data/cityscapes',
                 'labelTrainIds', 'cityscapes.py'):
        assert text in proc.stderr, (text, proc.stderr[-2000:])
    assert not work_dir.exists()
