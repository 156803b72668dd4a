#!/usr/bin/env bash
# The GPU check: on a fresh GPU machine that has Python, a CUDA torch,
# torchvision, nvcc and no internet, install mmdist from a prepared folder,
# run the GPU tests and the four-settings benchmark, and write what it saw.
#
#   bash scripts/gpu_wheels.sh .whl      # here, with internet: the folder
#   bash scripts/gpu_check.sh OUT [.whl] # there
#
# It installs into the Python environment that holds the machine's torch
# (VENV to pick another) with scripts/install.sh in offline mode, the
# default way: mmcv-lite, nothing compiled; mmcv's ops run on the GPU
# through mmdist's torch/torchvision stand-ins, which the tests compare with
# mmcv's recorded kernels (tests/test_ops, -m gpu).
#
# Writes OUT/gpu_check.log (everything), OUT/pytest.log, OUT/results.md and
# OUT/results.json (benchmark), OUT/summary.md (GPU, versions, stage times,
# test counts, benchmark tables). Exit status: non-zero if a step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash scripts/gpu_check.sh OUT_DIR [WHEELS_DIR]}
WHEELS=$(realpath "${2:-.whl}")
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
exec > >(tee "$OUT/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1
START=$SECONDS
STAGES=()
stage() {
    STAGES+=("| $1 | $(( SECONDS - STAGE_START )) s |")
    echo "[gpu_check] $1 took $(( SECONDS - STAGE_START )) s"
}

VENV=${VENV:-$(python3 -c 'import sys; print(sys.prefix)')}
PY="$VENV/bin/python"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch; assert torch.cuda.is_available(), 'torch sees no GPU'" \
    || exit 1

STAGE_START=$SECONDS
VENV="$VENV" WHEELS="$WHEELS" bash scripts/install.sh || { echo "[gpu_check] install failed"; exit 1; }
stage install
RC=0

STAGE_START=$SECONDS
# Four workers: the training runs are separate processes, mostly start-up.
"$PY" -m pytest -m gpu tests -v -p no:cacheprovider -n 4 2>&1 \
    | tee "$OUT/pytest.log"
[ "${PIPESTATUS[0]}" = 0 ] || RC=1
stage "GPU tests (pytest -m gpu)"

STAGE_START=$SECONDS
# Every teacher option beside the student alone (and mmyolo's own KD of
# RTMDet-m -> RTMDet-s), and the teacher's forward alone (plain, folded,
# channels-last, compiled).
VARIANTS=student,mmrazor,mmdist,kd,unfolded,bf16,channels_last,compiled,stream
"$PY" benchmarks/bench_settings.py --device cuda --out "$OUT" \
    --variants "$VARIANTS" \
    --teacher-forward || RC=1
stage "benchmark (benchmarks/bench_settings.py)"

{
    echo "# scripts/gpu_check.sh"
    echo
    "$PY" - <<'EOF'
import mmcv, mmcv._ext, platform, torch, torchvision
ops = ('mmdist stand-in' if getattr(mmcv._ext, 'MMDIST_STANDIN', False)
       else 'compiled, CUDA ' + mmcv._ext.get_compiling_cuda_version())
print(f'- GPU: {torch.cuda.get_device_name()}')
print(f'- Python {platform.python_version()}, torch {torch.__version__} '
      f'(CUDA {torch.version.cuda}), torchvision {torchvision.__version__}, '
      f'mmcv {mmcv.__version__} (ops: {ops})')
EOF
    echo "- tests: $(grep -E '^=+ .*(passed|failed|error).* =+$' "$OUT/pytest.log" | tail -1)"
    echo "- total: $(( SECONDS - START )) s"
    echo
    echo "| stage | time |"
    echo "|---|---|"
    printf '%s\n' "${STAGES[@]}"
    echo
    cat "$OUT/results.md" 2>/dev/null
} > "$OUT/summary.md"
cat "$OUT/summary.md"

exit $RC
