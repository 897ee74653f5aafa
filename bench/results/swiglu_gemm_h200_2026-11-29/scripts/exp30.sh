#!/usr/bin/env bash
# swiglu_gemm cluster 1 vs 2 (occupancy-sized grid): tests, gemm_bench, prefill A/B.
set -u
G=$PWD/.gpu
mkdir -p $OUT/ab
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
MODEL=/tmp/llama-3.1-8b
[ -f $MODEL/config.json ] || $G/bin/tandem make-model --config llama-3.1-8b --out $MODEL --dtype bf16 --tokenizer $TANDEM_SHARED/golden/models/llama3-tokenizer >/dev/null 2>&1 &
MK=$!
for cl in 1 2; do
  TANDEM_SWIGLU_CLUSTER=$cl timeout 100 $G/bin/test_cuda --gtest_filter='*Swiglu*' > $OUT/ab/test_c$cl.txt 2>&1; echo "cluster $cl tests rc=$?"
  grep -E "FAILED|Failure|differing" $OUT/ab/test_c$cl.txt | head -5
  TANDEM_SWIGLU_CLUSTER=$cl timeout 60 $G/bin/gemm_bench --quick --random 2048 7500 > $OUT/ab/gemm_bench_c$cl.json 2> $OUT/ab/gemm_bench_c$cl.txt
  TANDEM_SWIGLU_CLUSTER=$cl timeout 60 $G/bin/gemm_bench --quick 7500 > $OUT/ab/gemm_bench_zeros_c$cl.json 2> $OUT/ab/gemm_bench_zeros_c$cl.txt
  echo "cluster $cl:"; grep gate_up $OUT/ab/gemm_bench_c$cl.txt $OUT/ab/gemm_bench_zeros_c$cl.txt | cut -c1-110
done
wait $MK
r=0
for v in off c2 c1 off c1 c2; do
    r=$((r + 1))
    e="TANDEM_SWIGLU_GEMM=0"; [ $v = c1 ] && e="TANDEM_SWIGLU_CLUSTER=1"; [ $v = c2 ] && e="TANDEM_SWIGLU_CLUSTER=2"
    env $e timeout 70 $G/bin/tandem bench-model --model $MODEL --device cuda --prefill 2048 7500 \
      --decode 1x7500 --json $OUT/ab/ab_${v}_$r.json >/dev/null 2>$OUT/ab/ab_${v}_$r.err
    python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], ' '.join(f\"p{x['tokens']}={x['ms']:.2f}\" for x in d['prefill']), ' '.join(f\"{x['batch']}x{x['ctx']}={x['ms']:.3f}\" for x in d['decode']))" $OUT/ab/ab_${v}_$r.json "$v r$r" || tail -3 $OUT/ab/ab_${v}_$r.err
done
cd $OUT && tar czf results.tgz ab && rm -rf ab
