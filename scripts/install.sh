#!/usr/bin/env bash
# Set up (or check) the virtual environment that mmdist runs in.
#
# Idempotent: every step is skipped when what it installs is already there,
# so a second run takes seconds. VENV picks the environment (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0
MMCV_VERSION=2.1.0
STAMP="$VENV/.mmdist-install"
FINGERPRINT=$(cat pyproject.toml scripts/install.sh | sha1sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
    echo "[install] creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# pipefail keeps pip's exit status; the filter only drops this machine's
# noise about absent local index folders.
pip_install() { "$PY" -m pip install -q --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$FINGERPRINT" ] \
    && "$PY" -c "import mmdist, mmcv.ops, mmdet, mmseg, mmrazor" 2>/dev/null; then
    echo "[install] $VENV is up to date"
    exit 0
fi

# mmcv's and mmengine's setup code import pkg_resources (gone in setuptools 82).
pip_install "setuptools>=69,<82" wheel ninja
# A bare `torch` requirement would pull the multi-GB CUDA build.
"$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null \
    || pip_install "torch==$TORCH_VERSION"
# numpy 1.x: mmcv 2.1, mmdet 3.3 and mmseg 1.2 predate numpy 2.
pip_install "numpy==1.26.4" "opencv-python==4.10.0.84" "mmengine==0.10.7"

if ! "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null; then
    # No wheel on the registry: build it with its CPU ops (about 10 minutes
    # on 2 cores; pip caches the wheel). Build isolation would drop the ops.
    echo "[install] building mmcv $MMCV_VERSION with ops (about 10 minutes the first time)"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        pip_install --no-build-isolation "mmcv==$MMCV_VERSION"
    "$PY" -c "import mmcv.ops" || { echo "[install] mmcv.ops failed to import" >&2; exit 1; }
fi

pip_install --no-build-isolation -e ".[tests]"
"$PY" -c "import mmdist, mmcv.ops, mmdet, mmseg, mmrazor"
echo "$FINGERPRINT" > "$STAMP"
echo "[install] $VENV is ready"
