#!/usr/bin/env bash
# few_rows_gemm: its test first (stop if it fails), gemm_bench --quick, the suite + checks, ABBA
# bench-model with TANDEM_FEW_ROWS_GEMM=0/1 in one binary.
set -u
G=$PWD/.gpu
mkdir -p $OUT/run $OUT/ab
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv > $OUT/ab/gpu.txt
timeout 120 $G/bin/test_cuda --gtest_filter='*FewRows*:*Gemm*' > $OUT/ab/few_rows_test.txt 2>&1; rc=$?
tail -15 $OUT/ab/few_rows_test.txt
if [ $rc != 0 ]; then grep -B2 -A8 "Failure" $OUT/ab/few_rows_test.txt | head -60; cd $OUT && tar czf results.tgz run ab; exit 0; fi
timeout 120 $G/bin/gemm_bench --quick 1 2 4 8 16 > $OUT/ab/gemm_bench.json 2> $OUT/ab/gemm_bench.txt
cat $OUT/ab/gemm_bench.txt
MODEL=/tmp/llama-3.1-8b
$G/bin/tandem make-model --config llama-3.1-8b --out $MODEL --dtype bf16 --tokenizer $TANDEM_SHARED/golden/models/llama3-tokenizer >/dev/null 2>&1 &
MK=$!
OUT=$OUT/run timeout 260 bash $G/gpu_run.sh '--gtest_filter=-*TmaPrefill*' > $OUT/run/gpu_run.log 2>&1; echo "gpu_run rc=$?"
grep -E "PASSED|FAILED|Failure|equal" $OUT/run/gpu_run.log | tail -12
wait $MK
r=0
for v in 0 1 1 0 0 1; do
    r=$((r + 1))
    TANDEM_FEW_ROWS_GEMM=$v timeout 80 $G/bin/tandem bench-model --model $MODEL --device cuda --prefill 7500 \
      --decode 1x7500 16x2048 32x2048 --json $OUT/ab/ab_${v}_$r.json >/dev/null 2>&1
    python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], ' '.join(f\"p{x['tokens']}={x['ms']:.2f}\" for x in d['prefill']), ' '.join(f\"{x['batch']}x{x['ctx']}={x['ms']:.3f}\" for x in d['decode']))" $OUT/ab/ab_${v}_$r.json "few_rows=$v r$r"
done
cd $OUT && tar czf results.tgz run ab && rm -rf run ab
