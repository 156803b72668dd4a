#!/usr/bin/env bash
# Set up (or check) the virtual environment that mmdist runs in.
#
# Idempotent: every step is skipped when what it installs is already there,
# so a second run takes seconds. Nothing is compiled by default: mmcv comes
# as mmcv-lite (its Python code without the compiled ops), and mmdist's
# start-up hook gives it an mmcv._ext made of torch/torchvision ops.
#
#   VENV=path          the environment (default .venv; created if missing).
#                      A torch already in it is kept, if a torchvision works
#                      with it.
#   MMDIST_MMCV=full   build full mmcv 2.1.0 from source instead (its CPU
#                      kernels, and its CUDA kernels where torch has CUDA,
#                      nvcc is found and a GPU is visible or
#                      TORCH_CUDA_ARCH_LIST is set). mmcv 2.1 compiles as
#                      C++17, which torch >= 2.14 refuses: this mode installs
#                      torch 2.13. MMDIST_CUDA_OPS=0 skips the CUDA kernels;
#                      TORCH_CUDA_ARCH_LIST and MAX_JOBS reach the build.
#                      A compiled mmcv already in the environment is kept in
#                      either mode.
#   WHEELS=dir         offline: install from a folder made by
#                      scripts/gpu_wheels.sh, nothing from the net.
#   DEPLOY=1           also the deploy extra (mmdeploy, onnx, onnxruntime:
#                      tools/deploy.py, tools/test.py --onnx); make test
#                      sets it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
MMDIST_MMCV=${MMDIST_MMCV:-lite}
case "$MMDIST_MMCV" in
    lite) TORCH_VERSION=2.14.1 TORCHVISION_VERSION=0.29.1 ;;
    full) TORCH_VERSION=2.13.0 TORCHVISION_VERSION=0.28.0 ;;
    *) echo "[install] MMDIST_MMCV=$MMDIST_MMCV: use lite (default) or full" >&2
       exit 2 ;;
esac
MMCV_VERSION=2.1.0
WHEELS=${WHEELS:-}
DEPLOY=${DEPLOY:-0}
# The extras: the tests' and mmyolo's always, mmdeploy's with DEPLOY=1.
EXTRAS=tests,yolo
[ "$DEPLOY" = 1 ] && EXTRAS=$EXTRAS,deploy
STAMP="$VENV/.mmdist-install"
FINGERPRINT=$( (cat pyproject.toml setup.py scripts/install.sh _mmdist_mmcv_ext.py 2>/dev/null;
                echo "$MMDIST_MMCV ${MMDIST_CUDA_OPS:-} $EXTRAS") | sha1sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
    echo "[install] creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP_OFFLINE=()
[ -n "$WHEELS" ] && PIP_OFFLINE=(--no-index --find-links "$WHEELS")
# pipefail keeps pip's exit status; the filter only drops this machine's
# noise about absent local index folders.
pip_install() { "$PY" -m pip install -q --disable-pip-version-check \
    "${PIP_OFFLINE[@]}" "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
check() { "$PY" -c "$1" 2>/dev/null; }

TORCH_VISION_WORKS='import torch, torchvision.ops as ops
ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5)'
# mmcv 2.1 compiles as C++17, which torch >= 2.14 headers refuse.
TORCH_FITS_MMCV_BUILD='import sys, torch
v = tuple(map(int, torch.__version__.split("+")[0].split(".")[:2]))
sys.exit(not (2, 0) <= v < (2, 14))'
TORCH_HAS_CUDA='import sys, torch; sys.exit(torch.version.cuda is None)'
# A compiled mmcv/_ext is found by Python's own finders, before mmdist's.
MMCV_COMPILED='import importlib.util as u, sys
spec = u.find_spec("mmcv._ext")
sys.exit(spec is None or spec.origin == "mmdist")'
MMCV_HAS_CUDA='import sys; from mmcv.ops import get_compiling_cuda_version as v
sys.exit(v() == "not available")'
MMCV_OK="import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')"
READY="import pkg_resources, mmdist, mmcv.ops, mmdet, mmseg, mmrazor, mmpretrain, mmyolo
$TORCH_VISION_WORKS"
[ "$DEPLOY" = 1 ] && READY="$READY
import mmdeploy.apis, onnxruntime"

# Full mode: mmcv's CUDA kernels are built where torch has CUDA, nvcc is
# found and there is an architecture to build for (a GPU or the user's list).
want_cuda_ops() {
    [ "$MMDIST_MMCV" = full ] && [ "${MMDIST_CUDA_OPS:-1}" != 0 ] \
        && check "$TORCH_HAS_CUDA" || return 1
    command -v nvcc >/dev/null || [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ] \
        || return 1
    [ -n "${TORCH_CUDA_ARCH_LIST:-}" ] \
        || check 'import sys, torch; sys.exit(not torch.cuda.is_available())'
}
mmcv_in_place() {
    check "$MMCV_OK" || return 1
    [ "$MMDIST_MMCV" = lite ] || check "$MMCV_COMPILED" || return 1
    ! want_cuda_ops || check "$MMCV_HAS_CUDA"
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$FINGERPRINT" ] \
    && check "$READY" && mmcv_in_place; then
    echo "[install] $VENV is up to date"
    exit 0
fi

# mmengine's package lookups (mmdet::, mmseg:: configs) and mmcv's setup
# code import pkg_resources, which setuptools 82 removed; torch needs
# setuptools >= 77.0.3. Every install below carries the pin, or pip would
# take the newest setuptools for torch.
SETUPTOOLS="setuptools>=77.0.3,<82"
check 'import sys, setuptools
v = tuple(map(int, setuptools.__version__.split(".")[:3]))
sys.exit(not (77, 0, 3) <= v < (82,))' || pip_install "$SETUPTOOLS" wheel

# torch and torchvision. Kept: a torch that has a working torchvision (a
# user's own CUDA build, say); for a full mmcv build it must also be older
# than 2.14. Else the registry's pair, which runs on CPU and GPU alike; a
# CPU-only torch (+cpu) cannot load the registry's torchvision, so it is
# not taken.
torch_kept() {
    check "import torch" || return 1
    [ "$MMDIST_MMCV" = lite ] || check "$TORCH_FITS_MMCV_BUILD" || {
        echo "[install] MMDIST_MMCV=full: mmcv $MMCV_VERSION does not build" \
             "against torch $("$PY" -c 'import torch; print(torch.__version__)')" \
             "(C++17; torch >= 2.14 needs C++20); installing torch $TORCH_VERSION"
        return 1
    }
    check "$TORCH_VISION_WORKS" && return 0
    if check "import torch, sys; sys.exit(torch.__version__ != '$TORCH_VERSION')"; then
        pip_install --no-deps "torchvision==$TORCHVISION_VERSION"
        check "$TORCH_VISION_WORKS" && return 0
    fi
    echo "[install] torch $("$PY" -c 'import torch; print(torch.__version__)') is" \
         "in $VENV but no torchvision that works with it: install the" \
         "torchvision release made for it (from the index that torch came" \
         "from), then run this again" >&2
    exit 1
}
if ! torch_kept; then
    echo "[install] installing torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION"
    pip_install "torch==$TORCH_VERSION,!=$TORCH_VERSION+cpu" \
        "torchvision==$TORCHVISION_VERSION" "$SETUPTOOLS"
fi
"$PY" -c "import torch; print('[install] torch', torch.__version__,
          'CUDA', torch.version.cuda, '| GPU visible:', torch.cuda.is_available())"

# mmcv-lite and mmcv are two distributions of one package: a full mmcv
# build replaces a lite one, and a compiled mmcv is never replaced by lite.
build_mmcv() {  # $1: cuda or cpu
    local start=$SECONDS
    check "import importlib.metadata as m; m.version('mmcv-lite')" \
        && "$PY" -m pip uninstall -q -y mmcv-lite
    pip_install ninja
    if [ "$1" = cuda ]; then
        local arch=${TORCH_CUDA_ARCH_LIST:-$("$PY" -c 'import torch
print(";".join(sorted({"%d.%d" % torch.cuda.get_device_capability(i)
                       for i in range(torch.cuda.device_count())})))')}
        echo "[install] building mmcv $MMCV_VERSION with CUDA kernels for" \
             "arch $arch on $(nproc) cores (58 CUDA files besides the CPU ones:" \
             "far longer than the CPU build); MMDIST_CUDA_OPS=0 skips them"
        # --no-cache-dir: a cached CPU-only wheel of the same version would do.
        FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$arch" MMCV_WITH_OPS=1 \
            MAX_JOBS=${MAX_JOBS:-$(nproc)} pip_install --no-build-isolation \
            --no-cache-dir --force-reinstall --no-deps "mmcv==$MMCV_VERSION"
    else
        echo "[install] building mmcv $MMCV_VERSION with its CPU kernels (about" \
             "15 minutes on 2 cores the first time; pip caches the wheel)"
        # No GPU in sight: mmcv compiles CUDA whenever torch sees one.
        CUDA_VISIBLE_DEVICES= FORCE_CUDA=0 MMCV_WITH_OPS=1 \
            MAX_JOBS=${MAX_JOBS:-$(nproc)} pip_install --no-build-isolation \
            --force-reinstall --no-deps "mmcv==$MMCV_VERSION"
    fi
    echo "[install] mmcv built in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
}
MMCV_LITE=()
if check "$MMCV_OK" && check "$MMCV_COMPILED"; then
    [ "$MMDIST_MMCV" = full ] && want_cuda_ops && ! check "$MMCV_HAS_CUDA" \
        && build_mmcv cuda
elif [ "$MMDIST_MMCV" = full ]; then
    if want_cuda_ops; then build_mmcv cuda; else build_mmcv cpu; fi
elif ! check "$MMCV_OK"; then
    if check "import importlib.metadata as m; m.version('mmcv')"; then
        echo "[install] removing mmcv $("$PY" -c 'import importlib.metadata as m
print(m.version("mmcv"))') (mmdet 3.3 needs mmcv $MMCV_VERSION)"
        "$PY" -m pip uninstall -q -y mmcv
    fi
    echo "[install] installing mmcv-lite $MMCV_VERSION (no compiled ops; mmdist" \
         "runs them through torch/torchvision)"
    MMCV_LITE=("mmcv-lite==$MMCV_VERSION")
fi

# mmdist (editable) and the rest (mmengine, mmdet, mmseg, mmrazor,
# mmpretrain, numpy, opencv, ...), resolved by pip. Its build writes the start-up hook
# (setup.py) that gives mmcv-lite its ops in every process.
if [ -n "$WHEELS" ]; then
    # Offline: the folder holds every wheel that is missing (mmcv-lite's
    # included); nothing is resolved against an index (a GPU image brings
    # torch, cv2, scipy, ...).
    pip_install --no-deps "$WHEELS"/*.whl
    pip_install --no-build-isolation --no-deps -e .
else
    pip_install --no-build-isolation -e ".[$EXTRAS]" "${MMCV_LITE[@]}" "$SETUPTOOLS"
fi
check "$MMCV_OK" || { "$PY" -c "import mmcv.ops"; echo "[install] mmcv.ops failed to import" >&2; exit 1; }
"$PY" -c "$READY"
echo "$FINGERPRINT" > "$STAMP"
echo "[install] $VENV is ready"
