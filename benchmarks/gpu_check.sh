#!/usr/bin/env bash
# GPU check (issues 13 and 23), ready to run unattended on a machine with one or more CUDA GPUs,
# from the repository root with ssal installed (pip install -e ".[test]" plus a CUDA build of
# torch):
#
#     bash benchmarks/gpu_check.sh [--out FILE] [--reference DIR]    # on a GPU: under 10 minutes
#     bash benchmarks/gpu_check.sh --dry-run [--out FILE]            # on the CPU: about a minute
#
# Sections (the same headers in both modes):
#   1. the tests that need CUDA: tests/training/test_devices_and_budgets.py (device resolution:
#      cuda and cuda:N accepted where present, refused where not);
#   2. training step, ssal against the public AimCLR code (benchmarks/reference_aimclr.py, a
#      checkout of github.com/Levigty/AimCLR named by --reference DIR or $AIMCLR_REF; without
#      one its rows are skipped with a line saying so): aimclr and ssal in fp32, bf16 autocast
#      and bf16 + torch.compile (inductor; 1 warm-up and 3 timed steps, at most $COMPILE_TIMEOUT
#      = 180 s per row, as a recompiling model would otherwise eat the budget), the reference in
#      fp32 and bf16 autocast, at T 75 (batch 128, queue 2048), and fp32 at T 240; step time,
#      seq/s and peak GPU memory per row;
#   3. DDP on the devices present: torchrun with one process per GPU (NCCL; one GPU: a world of
#      one), a few bf16 steps, the checkpoint's step count checked;
#   4. predict throughput (BatchNorm-folded encoders) against the GPU's matmul rate;
#   5. the real-evidence benchmark, bandai-affect on its `full` schedule (the presets' widths,
#      clip 50, every file), where $SSAL_DATA or ../shared/data/bandai-namco exists (else
#      skipped with a line). The whole schedule is 300 epochs of 7 methods: hours. To fit the
#      10 minutes this check runs it with --pretrain-only for aimclr and ssal, each pretraining
#      capped at $BENCH_STEPS optimisation steps (default 200, about 5 epochs of the corpus),
#      through a spec that extends bandai-affect and adds run.max_steps to its methods; the
#      figures are the corpus read (cached after the first run), the steps and the seconds per
#      method. FULL=1 runs the whole schedule, scoring included, instead (hours; give it
#      TIMEOUT=36000).
#
# --dry-run: the same sections on the CPU with tiny sizes, in CI-sized time: the same tests;
#   2 steps of batch 8, T 16, queue 64 at the test widths (--tiny), compile with the aot_eager
#   backend (tracing, no C++ build), no T 240 rows; DDP with gloo, 2 processes on the CPU;
#   predict on 64 sequences; the benchmark stage on the `quick` schedule, --pretrain-only with
#   the same derived spec capped at 2 steps. One torch thread per process unless
#   OMP_NUM_THREADS says otherwise.
# --out FILE: everything printed also goes to FILE, written atomically (a temporary file
#   beside it, renamed into place at the end).
# Exit status: 0 when every stage passed; 1 when one failed (named in the last line); 2 without
# a CUDA GPU (and without --dry-run), or on a bad argument.
# Environment: PYTHON (default python), TIMEOUT (seconds per command; 300, dry run 120),
# COMPILE_TIMEOUT, STEPS (timed steps per row, default 5), BENCH_STEPS, FULL, SSAL_DATA, AIMCLR_REF.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python}
DRY=0
OUT_FILE=""
REF=${AIMCLR_REF:-}
usage() { sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) [ $# -ge 2 ] || { echo "gpu_check: --out needs a FILE" >&2; exit 2; }; OUT_FILE=$2; shift ;;
    --out=*) OUT_FILE=${1#--out=} ;;
    --reference) [ $# -ge 2 ] || { echo "gpu_check: --reference needs a DIR" >&2; exit 2; }; REF=$2; shift ;;
    --reference=*) REF=${1#--reference=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (known: --dry-run, --out FILE, --reference DIR, --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$OUT_FILE" ]; then
  out_dir=$(dirname -- "$OUT_FILE")
  if [ ! -d "$out_dir" ] || [ ! -w "$out_dir" ] || [ -d "$OUT_FILE" ]; then
    echo "gpu_check: --out $OUT_FILE: not a file in a writable folder" >&2
    exit 2
  fi
fi

NGPU=$($PY -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)" 2>/dev/null)
NGPU=${NGPU:-0}
if [ "$DRY" = 0 ] && [ "$NGPU" -lt 1 ]; then
  echo "gpu_check: no CUDA GPU visible (torch.cuda.device_count() = $NGPU): nothing to check here;" \
       "run 'bash benchmarks/gpu_check.sh --dry-run' for the CPU dry run"
  exit 2
fi

if [ "$DRY" = 1 ]; then
  DEV=cpu; TIMEOUT=${TIMEOUT:-120}; export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  STEP_ARGS=(--device cpu --T 16 --batch 8 --queue 64 --warmup 1 --steps 2 --tiny --threads "$OMP_NUM_THREADS")
  COMPILE=(--compile --compile-backend aot_eager); COMPILE_TIMEOUT=$TIMEOUT; COMPILE_STEPS=()
  BENCH_STEPS=2; SCHEDULE=quick; BENCH_METHODS=(); PRETRAIN_ONLY=(--pretrain-only)
else
  DEV=cuda; TIMEOUT=${TIMEOUT:-300}
  STEP_ARGS=(--device cuda --T 75 --batch 128 --queue 2048 --warmup 2 --steps "${STEPS:-5}")
  COMPILE=(--compile --compile-backend inductor); COMPILE_TIMEOUT=${COMPILE_TIMEOUT:-180}
  COMPILE_STEPS=(--warmup 1 --steps 3)
  BENCH_STEPS=${BENCH_STEPS:-200}; SCHEDULE=full; BENCH_METHODS=(--methods aimclr ssal); PRETRAIN_ONLY=(--pretrain-only)
fi
DATA=${SSAL_DATA:-../shared/data/bandai-namco}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
TMP_OUT=""
cleanup() { rm -rf "$WORK"; [ -n "$TMP_OUT" ] && rm -f "$TMP_OUT"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=()
STAGE=""
section() { STAGE=$1; echo; echo "## $1"; }
run_for() {  # run_for SECONDS COMMAND...: a failure (or overrun) is recorded against the current section
  local limit=$1
  shift
  echo "+ $*"
  timeout "$limit" "$@"
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAILED (exit $rc$([ $rc = 124 ] && echo ", over ${limit} s")): $*"
    FAILED+=("${STAGE%%:*}")
  fi
  return $rc
}
run() { run_for "$TIMEOUT" "$@"; }

check() {
  local t0=$SECONDS
  echo "# gpu_check$([ "$DRY" = 1 ] && echo " --dry-run (CPU, tiny sizes)") $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname)"
  [ "$DRY" = 0 ] && { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true; }
  $PY -c "import torch, os; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count(), \
'bf16', torch.cuda.is_available() and torch.cuda.is_bf16_supported(), 'cpus', os.cpu_count(), 'threads', torch.get_num_threads())"

  section "1. tests that need CUDA"
  if [ -f tests/training/test_devices_and_budgets.py ]; then
    run $PY -m pytest -q -rs -p no:cacheprovider tests/training/test_devices_and_budgets.py
  else
    echo "skipped: no tests/ folder (run from a checkout)"
  fi

  section "2. training step: ssal vs the AimCLR reference (fp32, bf16 autocast, compile)"
  for method in aimclr ssal; do
    run $PY benchmarks/gpu_steps.py --method "$method" --amp off "${STEP_ARGS[@]}"
    run $PY benchmarks/gpu_steps.py --method "$method" --amp bf16 "${STEP_ARGS[@]}"
    run_for "$COMPILE_TIMEOUT" $PY benchmarks/gpu_steps.py --method "$method" --amp bf16 "${COMPILE[@]}" \
      "${STEP_ARGS[@]}" ${COMPILE_STEPS[@]+"${COMPILE_STEPS[@]}"}
  done
  if [ -n "$REF" ] && [ -f "$REF/net/aimclr.py" ]; then
    for amp in off bf16; do
      run $PY benchmarks/gpu_steps.py --method reference --reference "$REF" --amp "$amp" "${STEP_ARGS[@]}"
    done
  else
    echo "skipped: the reference rows (no AimCLR checkout: give --reference DIR or AIMCLR_REF, a checkout of" \
         "github.com/Levigty/AimCLR)"
  fi
  if [ "$DRY" = 0 ]; then
    for method in aimclr ssal; do
      run $PY benchmarks/gpu_steps.py --method "$method" --amp off "${STEP_ARGS[@]}" --T 240 --steps 3
    done
    [ -n "$REF" ] && [ -f "$REF/net/aimclr.py" ] && \
      run $PY benchmarks/gpu_steps.py --method reference --reference "$REF" --amp off "${STEP_ARGS[@]}" --T 240 --steps 3
  else
    echo "dry run: the T 240 rows are left out"
  fi

  section "3. DDP on the devices present"
  local nproc backend
  if [ "$DRY" = 1 ]; then nproc=2; backend="gloo, 2 processes on the CPU"; else nproc=$NGPU; backend="NCCL, $NGPU GPU(s)"; fi
  echo "$backend"
  local tiny=()
  [ "$DRY" = 1 ] && tiny=(--set "model.encoder.channels=[8,16]" --set "model.encoder.strides=[1,2]"
                          --set model.augment.general.clip_len=16 --set model.queue_size=32 --set data.builtin_n=64
                          --set train.batch_size=16)
  [ "$DRY" = 0 ] && tiny=(--set data.builtin_n=600 --set train.batch_size=128 --set run.amp=bf16)
  if run env OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" $PY -m torch.distributed.run --standalone --nproc_per_node "$nproc" \
      -m ssal pretrain --method aimclr --out "$WORK/ddp" --no-progress --device "$DEV" \
      --set run.max_steps=4 --set run.knn_every=0 "${tiny[@]}"; then
    run $PY -c "import sys; from ssal.checkpoint import load_checkpoint as l; s = l(sys.argv[1])['global_step']; \
print('ddp steps', s); sys.exit(0 if s == 4 else 1)" "$WORK/ddp/checkpoint.pt"
  fi

  section "4. predict throughput"
  if [ "$DRY" = 1 ]; then
    run $PY benchmarks/bench_predict.py --device cpu --n 64 --batch 32 --T 32 --reps 1 --threads "$OMP_NUM_THREADS"
  else
    run $PY benchmarks/bench_predict.py --device cuda --n 8192 --batch 1024 --reps 3
  fi

  section "5. real-data benchmark: bandai-affect"
  if [ -d "$DATA/dataset-1/data" ] && [ -d "$DATA/dataset-2/data" ]; then
    if [ "${FULL:-0}" = 1 ] && [ "$DRY" = 0 ]; then
      echo "schedule full, every method, scoring included (FULL=1)"
      run $PY -m ssal benchmark bandai-affect --data "$DATA" --schedule full --device "$DEV" --out "$WORK/affect" \
        --no-progress
    else
      echo "schedule $SCHEDULE, --pretrain-only, each pretraining capped at $BENCH_STEPS steps"
      cat > "$WORK/bandai-affect-capped.yaml" <<EOF
# bandai-affect with each method's pretraining capped at $BENCH_STEPS steps (benchmarks/gpu_check.sh)
extends: bandai-affect
methods:
  - {name: skeletonclr, method: skeletonclr, set: {run: {max_steps: $BENCH_STEPS}}}
  - {name: aimclr, method: aimclr, set: {run: {max_steps: $BENCH_STEPS}}}
  - {name: ssal, method: ssal, set: {run: {max_steps: $BENCH_STEPS}}}
EOF
      local t=$SECONDS
      if run $PY -m ssal benchmark "$WORK/bandai-affect-capped.yaml" --data "$DATA" --schedule "$SCHEDULE" \
          ${BENCH_METHODS[@]+"${BENCH_METHODS[@]}"} "${PRETRAIN_ONLY[@]}" --device "$DEV" --out "$WORK/affect" --no-progress; then
        run $PY -c "import sys, pathlib; from ssal.checkpoint import load_checkpoint as l
runs = sorted(p.parent for p in pathlib.Path(sys.argv[1]).glob('pretrain/*/encoder.pt'))
for r in runs: print(f'{r.name}: {l(r / \"checkpoint.pt\")[\"global_step\"]} steps, encoder.pt written')
sys.exit(0 if runs else 1)" "$WORK/affect"
        echo "benchmark stage: $((SECONDS - t)) s"
      fi
    fi
  else
    echo "skipped: no data at $DATA (dataset-1/data and dataset-2/data; set SSAL_DATA)"
  fi

  echo
  if [ ${#FAILED[@]} -eq 0 ]; then
    echo "# gpu_check done in $((SECONDS - t0)) s: OK"
    return 0
  fi
  echo "# gpu_check done in $((SECONDS - t0)) s: FAILURES in section(s) $(printf '%s\n' "${FAILED[@]}" | sort -u | tr '\n' ' ')"
  return 1
}

if [ -n "$OUT_FILE" ]; then
  TMP_OUT=$(mktemp "$(dirname -- "$OUT_FILE")/.$(basename -- "$OUT_FILE").XXXXXX")
  check 2>&1 | tee "$TMP_OUT"
  rc=${PIPESTATUS[0]}
  mv -f "$TMP_OUT" "$OUT_FILE" && TMP_OUT=""
  exit "$rc"
fi
check 2>&1
