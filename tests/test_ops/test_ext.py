"""The stand-in ``mmcv._ext`` (``_mmdist_mmcv_ext`` and its ``.pth`` hook):
there in every process of the environment, never in front of a compiled
mmcv, and clear about the ops it lacks."""
import glob
import os
import site
import subprocess
import sys
import textwrap

import pytest
import torch

import _mmdist_mmcv_ext
from mmdist.ops.ext import OPS, MissingOpError, get_op
from tests.utils import REPO


def run_python(code: str, **kwargs) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter of this environment, outside the
    repository (so nothing is imported from the checkout by accident)."""
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True, cwd='/', **kwargs)


def has_standin() -> bool:
    import mmcv._ext
    return getattr(mmcv._ext, 'MMDIST_STANDIN', False)


needs_standin = pytest.mark.skipif(
    not has_standin(), reason='this environment has a compiled mmcv')


def test_the_install_put_the_hook_into_site_packages():
    hooks = [path for folder in site.getsitepackages()
             for path in glob.glob(os.path.join(folder, '*.pth'))
             if 'import _mmdist_mmcv_ext' in open(path).read()]
    assert [os.path.basename(path) for path in hooks] == [
        'mmdist-mmcv-ext.pth']
    # The module beside it (a copy, in an editable install) is this one.
    module = os.path.join(os.path.dirname(hooks[0]), '_mmdist_mmcv_ext.py')
    with open(module) as installed, open(
            os.path.join(REPO, '_mmdist_mmcv_ext.py')) as source:
        assert installed.read() == source.read(), 'run make install again'
    # Appended once, after Python's own finders.
    result = run_python("""
        import sys, _mmdist_mmcv_ext as hook
        finders = [f for f in sys.meta_path if f is hook.StandInFinder]
        print(len(finders), sys.meta_path.index(finders[0]) >
              max(i for i, f in enumerate(sys.meta_path)
                  if getattr(f, '__name__', '') == 'PathFinder'))
        print(hook.install())
    """)
    assert result.stdout.split() == ['1', 'True', 'False'], result.stderr


@needs_standin
def test_a_process_that_never_imports_mmdist_has_the_ops():
    # What mmdet's and mmseg's own tools do: import their models, run NMS.
    result = run_python("""
        import sys
        import mmdet.models, mmseg.models
        import mmcv._ext as ext
        print(ext.MMDIST_STANDIN, 'mmdist' in sys.modules)
        import torch
        from mmcv.ops import nms
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                              [20., 20., 30., 30.]])
        print(nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)[1].tolist())
        from mmcv.ops import get_compiling_cuda_version
        print(get_compiling_cuda_version().replace(' ', '_'))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['True', 'False', '[0,', '2]',
                                     'not_available']


@needs_standin
def test_an_op_without_a_torch_version_names_itself_and_the_switch():
    from mmcv.ops import box_iou_rotated
    boxes = torch.tensor([[5., 5., 4., 2., 0.3]])
    with pytest.raises(MissingOpError) as error:
        box_iou_rotated(boxes, boxes)
    message = str(error.value)
    assert "'box_iou_rotated'" in message
    assert 'MMDIST_MMCV=full make install' in message
    with pytest.raises(MissingOpError, match="'no_such_op'"):
        get_op('no_such_op')
    assert get_op('nms') is OPS['nms']


def test_private_names_are_not_invented():
    # importlib and pickle probe dunder names; they must stay missing.
    module = type(sys)('probe')
    _mmdist_mmcv_ext.StandInFinder.exec_module(module)
    assert not hasattr(module, '__path__')
    assert not hasattr(module, '__wrapped__')
    assert hasattr(module, 'roi_align_forward')


def test_a_compiled_ext_on_the_path_wins(tmp_path):
    # Python's own finder searches mmcv's folders before the stand-in's
    # finder is asked; a compiled _ext*.so is found by the same finder (and
    # before a .py of the same name), so a module file stands in for it.
    (tmp_path / '_ext.py').write_text(
        'COMPILED = True\n'
        'def get_compiling_cuda_version():\n    return "12.1"\n')
    result = run_python(f"""
        import mmcv
        mmcv.__path__.insert(0, {str(tmp_path)!r})
        import mmcv._ext as ext
        print(getattr(ext, 'COMPILED', False),
              getattr(ext, 'MMDIST_STANDIN', False))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['True', 'False']


def test_a_wheel_of_mmdist_carries_the_hook(tmp_path):
    # What `pip install .` installs: the .pth and its module at the root.
    # Built from a copy: a build leaves build/ and mmdist.egg-info behind.
    import shutil
    import zipfile
    source = tmp_path / 'src'
    shutil.copytree(os.path.join(REPO, 'mmdist'), source / 'mmdist',
                    ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('pyproject.toml', 'setup.py', 'README.md',
                 '_mmdist_mmcv_ext.py'):
        shutil.copy(os.path.join(REPO, name), source)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                    '--no-build-isolation', '-q', '-w', str(tmp_path),
                    str(source)], check=True, capture_output=True)
    wheel, = glob.glob(str(tmp_path / 'mmdist-*.whl'))
    names = zipfile.ZipFile(wheel).namelist()
    assert {'mmdist-mmcv-ext.pth', '_mmdist_mmcv_ext.py',
            'mmdist/ops/ext.py'} <= set(names)
    pth = zipfile.ZipFile(wheel).read('mmdist-mmcv-ext.pth').decode()
    assert pth == 'import _mmdist_mmcv_ext\n'
