"""mmdist.ops.roi_align beyond the recorded comparison with mmcv's kernel:
what it refuses."""
import pytest
import torch

import mmdist  # noqa: F401

pytestmark = pytest.mark.usefixtures('mmdist_ops_in_mmcv')


def test_max_mode_is_refused_with_the_way_out():
    from mmcv.ops import roi_align
    feats = torch.randn(1, 2, 8, 8)
    rois = torch.tensor([[0., 1., 1., 6., 6.]])
    with pytest.raises(NotImplementedError, match="pool_mode='max'") as e:
        roi_align(feats, rois, (2, 2), 1.0, 0, 'max', True)
    assert 'MMDIST_MMCV=full make install' in str(e.value)
