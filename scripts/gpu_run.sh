#!/usr/bin/env bash
# Runs on the GPU machine over the bundle scripts/gpu_bundle.sh made (.gpu/, where it also copies
# this script: `.gpu/gpu_run.sh` works from any checkout that carries .gpu):
# the CUDA test suite, then (with --bench) the prefill/decode benchmark of a Llama-3.1-8B-shaped
# random model made there, and ../shared/bench/torch_peer.py in the same call; with --disagg, the
# 1p1d system on CUDA (gpu_disagg.py): its greedy answers against one server on stories260K and on
# that model, and the reference workload through it with both engines on GPU 0, then (on a
# machine with two GPUs) prefiller on GPU 0 and decoder on GPU 1. Logs and JSON go to $OUT (or
# out/ when unset). --disagg-variants runs the one-GPU 1p1d workload twice: as is, and with both
# engines under CUDA MPS (their kernels then share the GPU instead of taking turns).
# --profile-decode times decode steps (graphs and eager) and breaks one eager step (PROFILE_CASE,
# default 4x7500) down per kernel with ncu; it runs after --bench, so a call cut short at its limit keeps the benchmark.
# Usage: scripts/gpu_run.sh [--bench] [--disagg] [--disagg-variants] [--profile-decode]
# [--skip-tests] [--gtest_filter=...]
# --bench also runs attention_bench (the prefill attention kernel alone) when the bundle has it.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ -x "$HERE/bin/test_cuda" ]; then G="$HERE"; else G="$(cd "$HERE/.." && pwd)/.gpu"; fi
OUT="${OUT:-$PWD/out}"
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
BENCH=0
DISAGG=0
VARIANTS=0
PROFILE=0
TESTS=1
FILTER=()
for a in "$@"; do
  case "$a" in
    --bench) BENCH=1 ;;
    --disagg) DISAGG=1 ;;
    --disagg-variants) VARIANTS=1 ;;
    --profile-decode) PROFILE=1 ;;
    --skip-tests) TESTS=0 ;;
    --gtest_filter=*) FILTER=("$a") ;;
    *) echo "gpu_run.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
missing=$(ldd "$G"/bin/tandem "$G"/bin/test_cuda 2>&1 | grep "not found" || true)
[ -z "$missing" ] || { echo "gpu_run.sh: missing libraries: $missing" >&2; exit 1; }

status=0
M="$TANDEM_SHARED/golden/models/stories260K"
NGPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)
if [ "$TESTS" = 1 ]; then
timeout 420 "$G"/bin/test_cuda "${FILTER[@]}" 2>&1 |
  tee "$OUT/test_cuda.log" | grep -E "FAILED|PASSED|SKIPPED|Failure|worst" | head -60 || true
grep -q "^\[  PASSED" "$OUT/test_cuda.log" && ! grep -q "^\[  FAILED" "$OUT/test_cuda.log" || status=1
# `tandem generate --device cuda` against the CPU oracle: the same greedy ids on a golden model.
for dev in cpu cuda; do
  "$G"/bin/tandem generate --model "$M" --prompt "Once upon a time" --max-tokens 48 --temperature 0 \
      --device $dev --json > "$OUT/generate_$dev.json" || status=1
done
python3 - "$OUT/generate_cpu.json" "$OUT/generate_cuda.json" <<'PY' || status=1
import json, sys
cpu, gpu = (json.load(open(p))["generated_ids"] for p in sys.argv[1:])
same = next((i for i, (a, b) in enumerate(zip(cpu, gpu)) if a != b), len(cpu))
print(f"generate --device cuda: first {same} of {len(cpu)} greedy ids equal the CPU's")
print("cuda text:", json.load(open(sys.argv[2]))["text"][:200])
PY
# Programmatic dependent launch (eager steps only) must not change a bit: eager with it and
# without it (TANDEM_CUDA_PDL=0); the CUDA graphs run is shown beside them. These runs ask for
# logprobs (sampled on the host), so generate_cuda.json above, whose ids the GPU sampler picks,
# is not one of them.
for pdl in 1 0; do
  TANDEM_CUDA_PDL=$pdl "$G"/bin/tandem generate --model "$M" --prompt "Once upon a time" \
      --max-tokens 48 --temperature 0 --logprobs 5 --device cuda --enforce-eager --json \
      > "$OUT/generate_eager_pdl$pdl.json" || status=1
done
"$G"/bin/tandem generate --model "$M" --prompt "Once upon a time" --max-tokens 48 --temperature 0 \
    --logprobs 5 --device cuda --json > "$OUT/generate_graphs_logprobs.json" || status=1
python3 - "$OUT"/generate_eager_pdl1.json "$OUT"/generate_eager_pdl0.json \
    "$OUT"/generate_graphs_logprobs.json <<'PY' || status=1
import json, sys
on, off, graphs = (json.load(open(p)) for p in sys.argv[1:])
def same(a, b): return all(a[k] == b[k] for k in ("generated_ids", "logprobs"))
print(f"generate --device cuda --enforce-eager: ids and logprobs with PDL "
      f"{'equal' if same(on, off) else 'DIFFER FROM'} those without; "
      f"CUDA graphs: {'equal' if same(on, graphs) else 'different'}")
sys.exit(0 if same(on, off) else 1)
PY
python3 "$G"/gpu_serve_check.py "$G"/bin/tandem "$M" || status=1
python3 "$G"/gpu_serve_check.py "$G"/bin/tandem "$M" --enforce-eager || status=1
fi

D="$OUT/disagg"
mkdir -p "$D"
disagg() { PYTHONUNBUFFERED=1 timeout "$1" python3 "$G"/gpu_disagg.py "${@:2}" || status=1; }
pack() { tar -C "$OUT" -czf "$OUT/disagg.tgz" disagg; }
MODEL=/tmp/llama-3.1-8b
make_model() {
  [ -f "$MODEL/config.json" ] || "$G"/bin/tandem make-model --config llama-3.1-8b --out "$MODEL" \
      --dtype bf16 --tokenizer "$TANDEM_SHARED/golden/models/llama3-tokenizer" >/dev/null || status=1
}
if [ "$DISAGG" = 1 ]; then
  disagg 120 check "$G"/bin/tandem "$M" "$D/check-stories-gpu0.json"
  [ "$NGPU" -ge 2 ] && disagg 120 check "$G"/bin/tandem "$M" "$D/check-stories-gpu0to1.json" \
      --prefiller-gpu 0 --decoder-gpu 1
  make_model
  # The same servers answer 3 greedy prompts (7500, 6523, 5546 tokens) before the benchmark;
  # the results are packed after each run, so a run cut short still returns what it had.
  disagg 200 bench "$G"/bin/tandem "$MODEL" "$D" 1p1d-gpu0 --ids 3,7500; pack
  if [ "$NGPU" -ge 2 ]; then
    disagg 200 bench "$G"/bin/tandem "$MODEL" "$D" 1p1d-gpu0to1 --ids 3,7500 --decoder-gpu 1; pack
  fi
  disagg 200 bench "$G"/bin/tandem "$MODEL" "$D" single-gpu0 --single --ids 3,7500
  for run in 1p1d-gpu0 1p1d-gpu0to1; do
    [ -f "$D/$run-answers.json" ] && disagg 10 compare "$D/single-gpu0-answers.json" \
        "$D/$run-answers.json" "$D/check-8b-$run.json"
  done
  pack
fi
if [ "$VARIANTS" = 1 ]; then
  make_model
  disagg 200 bench "$G"/bin/tandem "$MODEL" "$D" 1p1d-gpu0-default; pack  # this machine's baseline
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  if nvidia-cuda-mps-control -d; then
    disagg 200 bench "$G"/bin/tandem "$MODEL" "$D" 1p1d-gpu0-mps; pack
    echo quit | nvidia-cuda-mps-control
  else
    echo "gpu_run.sh: nvidia-cuda-mps-control -d failed; no MPS run" >&2; status=1
  fi
fi
rm -rf "$D"
if [ "$BENCH" = 1 ]; then
  MODEL=/tmp/llama-3.1-8b
  [ -f "$MODEL/config.json" ] || "$G"/bin/tandem make-model --config llama-3.1-8b --out "$MODEL" \
      --dtype bf16 --tokenizer "$TANDEM_SHARED/golden/models/llama3-tokenizer" >/dev/null || status=1
  # the prefill attention kernel alone (in the bundle when built with it)
  if [ -x "$G/bin/attention_bench" ]; then
    "$G"/bin/attention_bench 512 2048 7500 > "$OUT/attention_bench.json" || status=1
  fi
  "$G"/bin/tandem bench-model --model "$MODEL" --device cuda --json "$OUT/tandem_bench.json" \
      >/dev/null || status=1
  "$G"/bin/tandem bench-model --model "$MODEL" --device cuda --enforce-eager --prefill 512 \
      --json "$OUT/tandem_bench_eager.json" >/dev/null || status=1
  PYTHONUNBUFFERED=1 python3 "$TANDEM_SHARED/bench/torch_peer.py" 2>&1 | tee "$OUT/torch_peer.log" || status=1
  python3 "$G"/merge_bench.py "$OUT/tandem_bench.json" "$OUT/torch_peer.log" \
      "$OUT/tandem_bench_eager.json" > "$OUT/bench_result.json" || status=1
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); [print(k, v) for k, v in r["ratios"].items()]' \
      "$OUT/bench_result.json" || status=1
fi
if [ "$PROFILE" = 1 ]; then
  make_model
  for mode in graphs eager; do
    flag=(); [ "$mode" = eager ] && flag=(--enforce-eager)
    "$G"/bin/tandem bench-model --model "$MODEL" --device cuda "${flag[@]}" --prefill 16 \
        --decode 1x7500 4x7500 4x512 16x2048 32x2048 --json "$OUT/decode_steps_$mode.json" || status=1
  done
  CASE="${PROFILE_CASE:-4x7500}"
  timeout 300 ncu --metrics gpu__time_duration.sum --csv --log-file "$OUT/ncu_decode.csv" \
      "$G"/bin/tandem bench-model --model "$MODEL" --device cuda --enforce-eager --prefill 16 \
      --decode "$CASE" --iterations 1 >/dev/null || status=1
  python3 "$G"/ncu_step_breakdown.py "$OUT/ncu_decode.csv" "$OUT/decode_${CASE}_kernels.json" ||
      status=1
  gzip -f "$OUT/ncu_decode.csv"
fi

exit $status
