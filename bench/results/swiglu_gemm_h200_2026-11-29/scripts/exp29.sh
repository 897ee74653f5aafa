#!/usr/bin/env bash
# swiglu_gemm: tests (bits vs cuBLAS+silu_mul), gemm_bench at prefill rows, prefill A/B.
set -u
G=$PWD/.gpu
mkdir -p $OUT/ab
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
MODEL=/tmp/llama-3.1-8b
[ -f $MODEL/config.json ] || $G/bin/tandem make-model --config llama-3.1-8b --out $MODEL --dtype bf16 --tokenizer $TANDEM_SHARED/golden/models/llama3-tokenizer >/dev/null 2>&1 &
MK=$!
timeout 150 $G/bin/test_cuda --gtest_filter='*Swiglu*:*Gemm*' > $OUT/ab/gemm_tests.txt 2>&1; echo "tests rc=$?"
grep -E "OK \]|FAILED|Failure|differing|Which is" $OUT/ab/gemm_tests.txt | head -30
timeout 100 $G/bin/gemm_bench --quick --random 512 2048 7500 > $OUT/ab/gemm_bench.json 2> $OUT/ab/gemm_bench.txt; echo "gemm_bench rc=$?"
timeout 60 $G/bin/gemm_bench --quick 7500 > $OUT/ab/gemm_bench_zeros.json 2> $OUT/ab/gemm_bench_zeros.txt; grep gate_up $OUT/ab/gemm_bench_zeros.txt
grep gate_up $OUT/ab/gemm_bench.txt
wait $MK
r=0
for v in 0 1 1 0 0 1; do
    r=$((r + 1))
    TANDEM_SWIGLU_GEMM=$v timeout 70 $G/bin/tandem bench-model --model $MODEL --device cuda --prefill 2048 7500 \
      --decode 1x7500 --json $OUT/ab/ab_${v}_$r.json >/dev/null 2>$OUT/ab/ab_${v}_$r.err
    python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], ' '.join(f\"p{x['tokens']}={x['ms']:.2f}\" for x in d['prefill']), ' '.join(f\"{x['batch']}x{x['ctx']}={x['ms']:.3f}\" for x in d['decode']))" $OUT/ab/ab_${v}_$r.json "swiglu=$v r$r" || tail -3 $OUT/ab/ab_${v}_$r.err
done
cd $OUT && tar czf results.tgz ab && rm -rf ab
