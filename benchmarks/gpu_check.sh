#!/usr/bin/env bash
# GPU readiness check (issue 13, item 4): run as is on a machine with a CUDA GPU, from the
# repository root with ssal installed (pip install -e ".[test]" plus a CUDA build of torch).
# Under 5 minutes on one recent GPU:
#   1. a few pretraining steps per method in fp32 and bf16 autocast, eager and torch.compile'd
#      (every loss must be finite; step time, seq/s and peak memory printed);
#   2. a 2-process NCCL DDP pretraining run of a few steps if two or more GPUs are present;
#   3. predict throughput (BatchNorm-folded encoder) against the GPU's matmul rate.
# Exit status: non-zero if any step fails or gives a non-finite loss.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
STEPS=${STEPS:-5}
fail=0
run() { echo "+ $*"; timeout "${TIMEOUT:-240}" "$@" || { echo "FAILED ($?): $*"; fail=1; }; }

echo "# gpu_check $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count(), 'bf16', torch.cuda.is_available() and torch.cuda.is_bf16_supported())"
NGPU=$($PY -c "import torch; print(torch.cuda.device_count())")
if [ "${NGPU:-0}" -lt 1 ]; then echo "no CUDA GPU visible: nothing to check"; exit 2; fi

echo "## 1. training steps (batch 128, queue 2048, T 75): fp32 / bf16, eager / compiled"
for method in ssal aimclr skeletonclr; do
  for amp in off bf16; do
    run $PY benchmarks/gpu_steps.py --device cuda --method "$method" --amp "$amp" --steps "$STEPS"
  done
  run $PY benchmarks/gpu_steps.py --device cuda --method "$method" --amp bf16 --compile --steps "$STEPS"
done
run $PY benchmarks/gpu_steps.py --device cuda --method aimclr --amp bf16 --T 240 --steps "$STEPS"

echo "## 2. NCCL DDP, 2 processes"
if [ "$NGPU" -ge 2 ]; then
  out=$(mktemp -d)
  run torchrun --standalone --nproc_per_node 2 -m ssal pretrain --method aimclr --out "$out/ddp" --no-progress \
    --device cuda --set data.builtin_n=600 --set train.batch_size=128 --set run.max_steps=4 \
    --set run.knn_every=0 --set run.amp=bf16
  $PY -c "import json,sys; from ssal.checkpoint import load_checkpoint as l; c=l(sys.argv[1]); print('ddp steps', c['global_step'])" "$out/ddp/checkpoint.pt" || fail=1
else
  echo "skipped: $NGPU GPU(s)"
fi

echo "## 3. predict throughput"
run $PY benchmarks/bench_predict.py --device cuda --n 8192 --batch 1024 --reps 3

echo "## 4. real-data benchmark on the GPU (where ../shared/data/bandai-namco exists)"
BANDAI=${BANDAI:-../shared/data/bandai-namco}
if [ -d "$BANDAI/dataset-1/data" ]; then
  out=$(mktemp -d)
  # quick: the pipeline on CUDA; FULL=1 runs the `full` schedule (300 epochs, the presets' widths:
  # hours, not part of the 5-minute check; give it FULL=1 TIMEOUT=36000).
  run $PY -m ssal benchmark bandai-affect --data "$BANDAI" --schedule "$([ "${FULL:-0}" = 1 ] && echo full || echo quick)" \
    --device cuda --out "$out/affect" --no-progress
else
  echo "skipped: no $BANDAI"
fi

echo "# gpu_check done: $([ $fail -eq 0 ] && echo OK || echo FAILURES)"
exit $fail
