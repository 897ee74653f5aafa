#!/usr/bin/env bash
set -u
G=$PWD/.gpu
mkdir -p $OUT/ab $OUT/run
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
MODEL=/tmp/llama-3.1-8b
[ -f $MODEL/config.json ] || $G/bin/tandem make-model --config llama-3.1-8b --out $MODEL --dtype bf16 --tokenizer $TANDEM_SHARED/golden/models/llama3-tokenizer >/dev/null 2>&1 &
MK=$!
timeout 120 $G/bin/test_cuda --gtest_filter='*FewRows*:*Gemm*' > $OUT/ab/few_rows_test.txt 2>&1; rc=$?
tail -3 $OUT/ab/few_rows_test.txt
if [ $rc != 0 ]; then grep -B2 -A8 "Failure" $OUT/ab/few_rows_test.txt | head -60; cd $OUT && tar czf results.tgz ab; exit 0; fi
TANDEM_CUDA_PDL=0 timeout 120 $G/bin/gemm_bench --quick 1 8 > $OUT/ab/gemm_bench.json 2> $OUT/ab/gemm_bench.txt
echo "== gemm_bench, no PDL"; cut -c1-60 $OUT/ab/gemm_bench.txt | grep -v lm_head
wait $MK
r=0
for v in base few few_nopdl few_nopdl few base; do
    r=$((r + 1))
    e="TANDEM_FEW_ROWS_GEMM=0"; [ $v = few ] && e="TANDEM_FEW_ROWS_GEMM=1"; [ $v = few_nopdl ] && e="TANDEM_CUDA_PDL=0"
    env $e timeout 80 $G/bin/tandem bench-model --model $MODEL --device cuda --prefill 7500 \
      --decode 1x7500 4x4096 16x2048 32x2048 --json $OUT/ab/ab_${v}_$r.json >/dev/null 2>&1
    python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], ' '.join(f\"p{x['tokens']}={x['ms']:.2f}\" for x in d['prefill']), ' '.join(f\"{x['batch']}x{x['ctx']}={x['ms']:.3f}\" for x in d['decode']))" $OUT/ab/ab_${v}_$r.json "$v r$r"
done
OUT=$OUT/run timeout 260 bash $G/gpu_run.sh '--gtest_filter=-*TmaPrefill*' > $OUT/run/gpu_run.log 2>&1; echo "gpu_run rc=$?"
grep -E "PASSED|FAILED|Failure|equal" $OUT/run/gpu_run.log | tail -8
cd $OUT && tar czf results.tgz ab run && rm -rf ab run
