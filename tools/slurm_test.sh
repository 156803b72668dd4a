#!/usr/bin/env bash
# Evaluate on a slurm cluster, one task per GPU (tools/slurm_run.sh):
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#   bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG [CHECKPOINT] [test.py flags]
# (--teacher without a checkpoint evaluates model.teacher_ckpt.)
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bash $0 PARTITION JOB_NAME CONFIG [CHECKPOINT] [test.py flags]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/slurm_run.sh" test.py "$@"
