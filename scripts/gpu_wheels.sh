#!/usr/bin/env bash
# Make the folder that scripts/gpu_check.sh installs from on a GPU machine
# without internet: mmdist's dependencies that a CUDA image with torch,
# torchvision, numpy, scipy, matplotlib, opencv and pytest lacks, as wheels
# for that machine's Python (mmcv-lite among them: nothing is built there).
#
#   bash scripts/gpu_wheels.sh DIR [PYTHON_VERSION]   # default 3.12
#
# pip runs from mmdist's environment (PYTHON, default .venv/bin/python: make
# install).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:?usage: bash scripts/gpu_wheels.sh DIR [PYTHON_VERSION]}
PY_VERSION=${2:-3.12}
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || { echo "no $PYTHON: run make install first" >&2; exit 1; }
PIP=("$PYTHON" -m pip download -q --disable-pip-version-check --no-deps -d "$DIR")
mkdir -p "$DIR"
"${PIP[@]}" --only-binary=:all: --python-version "$PY_VERSION" \
    --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    mmcv-lite==2.1.0 mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 \
    mmrazor==1.0.0 \
    "setuptools>=69,<82" addict yapf platformdirs termcolor terminaltables \
    prettytable wcwidth ordered-set ftfy pycocotools shapely 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
ls "$DIR"
du -sh "$DIR"
