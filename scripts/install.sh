#!/usr/bin/env bash
# Set up (or check) the virtual environment that mmdist runs in.
#
# Idempotent: every step is skipped when what it installs is already there,
# so a second run takes seconds.
#
#   VENV=path          the environment (default .venv; created if missing).
#                      A torch with CUDA already in it is kept.
#   MMDIST_CUDA_OPS=0  never compile mmcv's CUDA kernels; on a GPU, mmdist
#                      then runs NMS, RoIAlign and the focal loss through
#                      torch/torchvision (mmdist/compat.py).
#   TORCH_CUDA_ARCH_LIST, MAX_JOBS   passed to mmcv's CUDA build.
#   WHEELS=dir         offline: install from a folder made by
#                      scripts/gpu_wheels.sh, nothing from the net.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0
TORCHVISION_VERSION=0.28.0
MMCV_VERSION=2.1.0
WHEELS=${WHEELS:-}
STAMP="$VENV/.mmdist-install"
FINGERPRINT=$( (cat pyproject.toml setup.py scripts/install.sh 2>/dev/null;
                echo "${MMDIST_CUDA_OPS:-}") | sha1sum | cut -d' ' -f1)

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
TORCH_FITS='import sys, torch
v = tuple(map(int, torch.__version__.split("+")[0].split(".")[:2]))
sys.exit(not (2, 0) <= v < (2, 14))'
TORCH_HAS_CUDA='import sys, torch; sys.exit(torch.version.cuda is None)'
MMCV_HAS_CUDA='import sys; from mmcv.ops import get_compiling_cuda_version as v
sys.exit(v() == "not available")'

# mmcv's CUDA kernels are built where torch has CUDA, nvcc is found and
# there is an architecture to build for (a visible GPU or the user's list).
want_cuda_ops() {
    [ "${MMDIST_CUDA_OPS:-1}" != 0 ] && check "$TORCH_HAS_CUDA" || return 1
    command -v nvcc >/dev/null || [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ] \
        || return 1
    [ -n "${TORCH_CUDA_ARCH_LIST:-}" ] \
        || check 'import sys, torch; sys.exit(not torch.cuda.is_available())'
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$FINGERPRINT" ] \
    && check "import pkg_resources, mmdist, mmcv.ops, mmdet, mmseg, mmrazor
$TORCH_VISION_WORKS" \
    && { ! want_cuda_ops || check "$MMCV_HAS_CUDA"; }; then
    echo "[install] $VENV is up to date"
    exit 0
fi

# mmcv's and mmengine's setup code import pkg_resources (gone in setuptools
# 82); torch 2.13 needs setuptools >= 77.0.3. Every install below carries the
# pin, or pip would take the newest setuptools for torch.
SETUPTOOLS="setuptools>=77.0.3,<82"
check 'import sys, setuptools
v = tuple(map(int, setuptools.__version__.split(".")[:3]))
sys.exit(not (77, 0, 3) <= v < (82,))' || pip_install "$SETUPTOOLS" wheel ninja

# torch and torchvision. Kept: a torch that mmcv builds against and that
# has CUDA or a working torchvision (a user's own CUDA build, say). Else the
# registry's torch 2.13.0, which runs on CPU and GPU alike and is the build
# torchvision 0.28.0 is made for; a CPU-only torch (2.13.0+cpu) cannot load
# that torchvision, so it is not taken.
if check "$TORCH_FITS" && { check "$TORCH_HAS_CUDA" || check "$TORCH_VISION_WORKS"; }; then
    if ! check "$TORCH_VISION_WORKS"; then
        if check "import torch, sys; sys.exit(torch.__version__ != '$TORCH_VERSION')"; then
            pip_install --no-deps "torchvision==$TORCHVISION_VERSION"
        fi
        check "$TORCH_VISION_WORKS" || {
            echo "[install] torch $("$PY" -c 'import torch; print(torch.__version__)') is" \
                 "in $VENV but no torchvision that works with it: install the" \
                 "torchvision release made for it (from the index that torch came" \
                 "from), then run this again" >&2
            exit 1
        }
    fi
else
    echo "[install] installing torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION"
    pip_install "torch==$TORCH_VERSION,!=$TORCH_VERSION+cpu" \
        "torchvision==$TORCHVISION_VERSION" "$SETUPTOOLS"
fi
"$PY" -c "import torch; print('[install] torch', torch.__version__,
          'CUDA', torch.version.cuda, '| GPU visible:', torch.cuda.is_available())"

if [ -n "$WHEELS" ]; then
    # Offline: the folder holds every wheel that is missing; nothing is
    # resolved against an index (a GPU image brings torch, cv2, scipy, ...).
    pip_install --no-deps "$WHEELS"/*.whl
else
    # numpy 1.x: mmcv 2.1, mmdet 3.3 and mmseg 1.2 predate numpy 2.
    check 'import numpy, sys; sys.exit(numpy.__version__ != "1.26.4")' \
        || pip_install "numpy==1.26.4"
    check 'import cv2' || pip_install "opencv-python==4.10.0.84"
    check 'import mmengine, sys; sys.exit(mmengine.__version__ != "0.10.7")' \
        || pip_install "mmengine==0.10.7"
fi

# mmcv has no wheel for current torch: it is built from source with its ops
# (--no-build-isolation, else the build cannot see torch and drops them).
build_mmcv() {  # $1: cuda or cpu
    local start=$SECONDS
    if [ "$1" = cuda ]; then
        local arch=${TORCH_CUDA_ARCH_LIST:-$("$PY" -c 'import torch
print(";".join(sorted({"%d.%d" % torch.cuda.get_device_capability(i)
                       for i in range(torch.cuda.device_count())})))')}
        echo "[install] building mmcv $MMCV_VERSION with CUDA kernels for" \
             "arch $arch on $(nproc) cores (58 CUDA files besides the CPU ones:" \
             "far longer than the CPU build, see README); MMDIST_CUDA_OPS=0" \
             "skips it and mmdist runs the ops on the GPU through torchvision"
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
MMCV_OK="import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')"
if want_cuda_ops; then
    check "$MMCV_OK" && check "$MMCV_HAS_CUDA" || build_mmcv cuda
elif ! check "$MMCV_OK"; then
    build_mmcv cpu
fi
check "$MMCV_OK" || { "$PY" -c "import mmcv.ops"; echo "[install] mmcv.ops failed to import" >&2; exit 1; }

if [ -n "$WHEELS" ]; then
    pip_install --no-build-isolation --no-deps -e .
else
    pip_install --no-build-isolation -e ".[tests]" "$SETUPTOOLS"
fi
"$PY" -c "import pkg_resources, mmdist, mmcv.ops, mmdet, mmseg, mmrazor
$TORCH_VISION_WORKS"
echo "$FINGERPRINT" > "$STAMP"
echo "[install] $VENV is ready"
