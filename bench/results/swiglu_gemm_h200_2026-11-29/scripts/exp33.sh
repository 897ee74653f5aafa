#!/usr/bin/env bash
# swiglu_gemm final: A/B alternated (prefill), suite + checks + bench beside torch_peer, gemm_bench.
set -u
G=$PWD/.gpu
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
mkdir -p $OUT/run $OUT/ab
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv > $OUT/run/gpu.txt
MODEL=/tmp/llama-3.1-8b
$G/bin/tandem make-model --config llama-3.1-8b --out $MODEL --dtype bf16 --tokenizer $TANDEM_SHARED/golden/models/llama3-tokenizer >/dev/null 2>&1
r=0
for v in 0 1 1 0 0 1 1 0; do
    r=$((r + 1))
    TANDEM_SWIGLU_GEMM=$v timeout 70 $G/bin/tandem bench-model --model $MODEL --device cuda --prefill 7500 \
      --decode 1x7500 --json $OUT/ab/ab_${v}_$r.json >/dev/null 2>$OUT/ab/ab_${v}_$r.err
    python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], ' '.join(f\"p{x['tokens']}={x['ms']:.2f}\" for x in d['prefill']), ' '.join(f\"{x['batch']}x{x['ctx']}={x['ms']:.3f}\" for x in d['decode']))" $OUT/ab/ab_${v}_$r.json "swiglu=$v r$r" || tail -3 $OUT/ab/ab_${v}_$r.err
done
timeout 60 $G/bin/gemm_bench --quick --random --only gate_up_proj 2048 7500 > $OUT/ab/gemm_bench.json 2> $OUT/ab/gemm_bench.txt; cut -c1-80 $OUT/ab/gemm_bench.txt
OUT=$OUT/run timeout 330 bash $G/gpu_run.sh --bench > $OUT/run/gpu_run.log 2>&1; echo "gpu_run rc=$?"
grep -E "PASSED|FAILED|Failure|equal" $OUT/run/gpu_run.log | tail -8
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); [print(k, v) for k, v in r["ratios"].items()]' $OUT/run/bench_result.json
cd $OUT && tar czf results.tgz run ab && rm -rf run ab
