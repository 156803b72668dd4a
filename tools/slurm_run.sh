#!/usr/bin/env bash
# What tools/slurm_train.sh and tools/slurm_test.sh share: run one of the
# tools as GPUS slurm tasks (one per GPU) with MMEngine's slurm launcher.
#   bash tools/slurm_run.sh TOOL PARTITION JOB_NAME [TOOL args]
# GPUS (default 8), GPUS_PER_NODE (8, or GPUS if fewer), CPUS_PER_TASK (5),
# SRUN_ARGS (more srun flags, split into words) and PYTHON (default: python
# on PATH) set the job.
set -euo pipefail
TOOL=$1
PARTITION=$2
JOB_NAME=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$((GPUS < 8 ? GPUS : 8))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
# --launcher goes last: test.py's checkpoint is an optional positional.
# shellcheck disable=SC2086
exec srun -p "$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 $SRUN_ARGS \
    "${PYTHON:-python}" -u "$(dirname "$0")/$TOOL" "${@:4}" --launcher=slurm
