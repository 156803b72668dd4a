#!/usr/bin/env bash
# The GPU check: on a fresh GPU machine that has Python, a CUDA torch,
# torchvision, nvcc and no internet, install mmdist from a prepared folder,
# run the GPU tests and the four-settings benchmark, and write what it saw.
#
#   bash scripts/gpu_wheels.sh .whl      # here, with internet: the folder
#   bash scripts/gpu_check.sh OUT [.whl] # there
#
# It installs into the Python environment that holds the machine's torch
# (VENV to pick another) with scripts/install.sh in offline mode. mmcv is
# built with its CPU kernels (MMDIST_CUDA_OPS=0): on 16 cores that fits the
# check's 8 minutes, where compiling its ~60 CUDA files for one architecture
# does not; mmdist then runs NMS, RoIAlign and the focal loss on the GPU
# through torch/torchvision, which the tests compare with mmcv's kernels.
# MMDIST_CUDA_OPS=1 builds mmcv's CUDA kernels instead; MMCV_CUDA_PROBE=N
# (seconds) times that build for N seconds at the end.
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
VENV="$VENV" WHEELS="$WHEELS" MMDIST_CUDA_OPS=${MMDIST_CUDA_OPS:-0} \
    bash scripts/install.sh || { echo "[gpu_check] install failed"; exit 1; }
stage install
RC=0

STAGE_START=$SECONDS
# Four workers: the training runs are separate processes, mostly start-up.
"$PY" -m pytest -m gpu tests -v -p no:cacheprovider -n 4 2>&1 \
    | tee "$OUT/pytest.log"
[ "${PIPESTATUS[0]}" = 0 ] || RC=1
stage "GPU tests (pytest -m gpu)"

STAGE_START=$SECONDS
"$PY" benchmarks/bench_settings.py --device cuda --out "$OUT" || RC=1
stage "benchmark (benchmarks/bench_settings.py)"

{
    echo "# scripts/gpu_check.sh"
    echo
    "$PY" - <<'EOF'
import mmcv, platform, torch, torchvision
from mmcv.ops import get_compiling_cuda_version
print(f'- GPU: {torch.cuda.get_device_name()}')
print(f'- Python {platform.python_version()}, torch {torch.__version__} '
      f'(CUDA {torch.version.cuda}), torchvision {torchvision.__version__}, '
      f'mmcv {mmcv.__version__} (CUDA kernels: '
      f'{get_compiling_cuda_version()})')
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

# MMCV_CUDA_PROBE=N: compile mmcv's CUDA build for the visible GPU for N
# seconds and count what finished, to size a full CUDA build of mmcv.
if [ "${MMCV_CUDA_PROBE:-0}" -gt 0 ]; then
    STAGE_START=$SECONDS
    SRC=$(mktemp -d)
    tar xzf "$WHEELS"/mmcv-*.tar.gz -C "$SRC"
    ARCH=$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
    (cd "$SRC"/mmcv-* && FORCE_CUDA=1 MMCV_WITH_OPS=1 TORCH_CUDA_ARCH_LIST="$ARCH" \
        MAX_JOBS=$(nproc) timeout "$MMCV_CUDA_PROBE" "$PY" setup.py build_ext \
        > "$OUT/mmcv_cuda_probe.log" 2>&1)
    pkill -f "$SRC"  # the compilers that ninja started
    CSRC=$(echo "$SRC"/mmcv-*/mmcv/ops/csrc/pytorch)
    CU_ALL=$(ls "$CSRC"/cuda/*.cu "$CSRC"/cuda/*.cpp | wc -l)
    CU_DONE=$(find "$SRC" -path '*pytorch/cuda/*.o' | wc -l)
    ALL=$(ls "$CSRC"/*.cpp "$CSRC"/cpu/*.cpp "$CSRC"/cuda/*.cu "$CSRC"/cuda/*.cpp | wc -l)
    DONE=$(find "$SRC" -name '*.o' | wc -l)
    PROBE="mmcv CUDA build for sm_${ARCH/./} on $(nproc) cores: $DONE of $ALL objects ($CU_DONE of $CU_ALL in pytorch/cuda/) in ${MMCV_CUDA_PROBE} s"
    echo "[gpu_check] $PROBE"
    rm -rf "$SRC"
    echo "- $PROBE" >> "$OUT/summary.md"
fi

exit $RC
