"""mmdist.ops.roi_align beyond the recorded comparison with mmcv's kernel:
what it refuses."""
import pytest
import torch

import mmdist  # noqa: F401


def test_max_mode_is_refused_with_the_way_out():
    import mmcv._ext as ext
    if not getattr(ext, 'MMDIST_STANDIN', False):
        pytest.skip('compiled mmcv: its own kernel runs max mode')
    from mmcv.ops import roi_align
    feats = torch.randn(1, 2, 8, 8)
    rois = torch.tensor([[0., 1., 1., 6., 6.]])
    with pytest.raises(NotImplementedError, match="pool_mode='max'") as e:
        roi_align(feats, rois, (2, 2), 1.0, 0, 'max', True)
    assert 'MMDIST_MMCV=full make install' in str(e.value)
