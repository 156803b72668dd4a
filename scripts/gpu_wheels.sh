#!/usr/bin/env bash
# Make the folder that scripts/gpu_check.sh installs from on a GPU machine
# without internet: mmdist's dependencies that a CUDA image with torch,
# torchvision, numpy, scipy, matplotlib, opencv and pytest lacks, as wheels
# for that machine's Python (mmcv-lite among them: nothing is built there).
# The list is scripts/gpu_wheel_list.py's: what make install put here.
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
mkdir -p "$DIR"
# What mmdist needs beyond the image, as installed here (pins included).
mapfile -t WANTED < <("$PYTHON" scripts/gpu_wheel_list.py)
[ "${#WANTED[@]}" -gt 0 ] || { echo "no distributions listed" >&2; exit 1; }
PIP=("$PYTHON" -m pip --disable-pip-version-check -q)
pure_wheel() {  # built here, kept only if it runs on any Python 3
    local tmp; tmp=$(mktemp -d)
    "${PIP[@]}" wheel --no-deps -w "$tmp" "$1" >/dev/null 2>&1 \
        && compgen -G "$tmp/*-py3-none-any.whl" >/dev/null \
        && mv "$tmp"/*.whl "$DIR"/
    local rc=$?; rm -rf "$tmp"; return $rc
}
for spec in "${WANTED[@]}"; do
    # A wheel for that Python; a project with none (an sdist alone, pure
    # Python in mmdist's stack) is built into one here.
    "${PIP[@]}" download --no-deps -d "$DIR" --only-binary=:all: \
        --python-version "$PY_VERSION" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 "$spec" 2>/dev/null \
        || pure_wheel "$spec" \
        || { echo "no wheel for $spec on Python $PY_VERSION" >&2; exit 1; }
done
echo "${#WANTED[@]} distributions in $DIR:"
ls "$DIR"
du -sh "$DIR"
