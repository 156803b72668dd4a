"""mmyolo 0.6.0 imports beside mmcv 2.1: its version check, run with mmcv's
version in its range by the start-up hook (``_mmdist_mmcv_ext``)."""
from tests.test_compat.utils import run_python


def test_without_the_hook_import_mmyolo_stops_on_mmcvs_version():
    stock = run_python("""
        import sys
        import _mmdist_mmcv_ext as hook
        sys.meta_path.remove(hook.MMYoloFinder)
        import mmyolo
    """)
    assert stock.returncode != 0
    assert ('AssertionError: MMCV==2.1.0 is used but incompatible. Please '
            'install mmcv>=2.0.0rc4, <2.1.0.') in stock.stderr


def test_with_it_mmyolo_imports_and_mmcv_keeps_its_version():
    # A process that never imports mmdist, as mmyolo's own tools run; its
    # ops run on the compiled mmcv._ext where mmcv is built (MMDIST_MMCV=full),
    # on mmdist's stand-in beside mmcv-lite.
    fixed = run_python("""
        import importlib.metadata as metadata
        import sys
        import mmyolo
        import mmcv
        import torch
        from mmcv.ops import batched_nms
        from mmyolo.registry import MODELS
        from mmyolo.utils import register_all_modules
        register_all_modules()
        assert 'mmdist' not in sys.modules
        boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 10, 10],
                              [20, 20, 30, 30]])
        _, keep = batched_nms(boxes, torch.tensor([0.9, 0.8, 0.7]),
                              torch.zeros(3), dict(iou_threshold=0.5))
        try:
            metadata.version('mmcv')
            built = 'compiled'
        except metadata.PackageNotFoundError:
            built = 'lite'
        ext = sys.modules['mmcv._ext']
        print(mmyolo.__version__, mmcv.__version__,
              MODELS.get('YOLODetector').__name__,
              ','.join(map(str, keep.tolist())), built,
              ext.__spec__.origin.endswith('.so'))
    """)
    assert fixed.returncode == 0, fixed.stderr
    version, mmcv_version, detector, keep, built, shared_object = \
        fixed.stdout.split()
    assert [version, mmcv_version, detector] == ['0.6.0', '2.1.0',
                                                 'YOLODetector']
    assert keep == '0,2'
    assert shared_object == str(built == 'compiled')


def test_other_assertions_of_mmyolo_are_left_alone():
    # mmyolo's MMEngine check fails as it would: only mmcv's is answered.
    proc = run_python("""
        import mmengine
        mmengine.__version__ = '1.0.0'
        import mmyolo
    """)
    assert proc.returncode != 0
    assert 'AssertionError: MMEngine==1.0.0 is used but incompatible' in \
        proc.stderr
