#!/usr/bin/env bash
# swiglu_gemm: group sweep for cluster 1 and 2, then prefill A/B with the best.
set -u
G=$PWD/.gpu
mkdir -p $OUT/ab
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
MODEL=/tmp/llama-3.1-8b
[ -f $MODEL/config.json ] || $G/bin/tandem make-model --config llama-3.1-8b --out $MODEL --dtype bf16 --tokenizer $TANDEM_SHARED/golden/models/llama3-tokenizer >/dev/null 2>&1 &
MK=$!
for cl in 1 2; do TANDEM_SWIGLU_CLUSTER=$cl timeout 100 $G/bin/test_cuda --gtest_filter="*Swiglu*" > $OUT/ab/test_c$cl.txt 2>&1; echo "c$cl tests rc=$?"; grep -E "Failure|differing" $OUT/ab/test_c$cl.txt | head -4; done
for cg in 1:16 2:4 2:8 2:16; do
  cl=${cg%:*}; gr=${cg#*:}
  TANDEM_SWIGLU_CLUSTER=$cl TANDEM_SWIGLU_GROUP=$gr timeout 60 $G/bin/gemm_bench --quick --random --only gate_up_proj 7500 > $OUT/ab/gb_c${cl}_g$gr.json 2> $OUT/ab/gb_c${cl}_g$gr.txt
  echo "c$cl g$gr: $(grep gate_up $OUT/ab/gb_c${cl}_g$gr.txt | cut -c20-75)"
done
best=$(python3 -c "
import json,glob
r=[]
for f in glob.glob('$OUT/ab/gb_c*_g*.json'):
    d=json.load(open(f)); x=d['results'][0]; r.append((x['swiglu_us'], f.split('/')[-1][3:-5]))
r.sort(); print(r[0][1])")
echo "best $best"
cl=${best%_g*}; cl=${cl#c}; gr=${best#*_g}
TANDEM_SWIGLU_CLUSTER=$cl TANDEM_SWIGLU_GROUP=$gr timeout 60 $G/bin/gemm_bench --quick --only gate_up_proj 7500 > $OUT/ab/gb_zeros_best.json 2> $OUT/ab/gb_zeros_best.txt
echo "zeros best: $(grep gate_up $OUT/ab/gb_zeros_best.txt | cut -c20-75)"
wait $MK
r=0
for v in off on on off off on; do
    r=$((r + 1))
    e="TANDEM_SWIGLU_GEMM=0"; [ $v = on ] && e="TANDEM_SWIGLU_CLUSTER=$cl TANDEM_SWIGLU_GROUP=$gr"
    env $e timeout 70 $G/bin/tandem bench-model --model $MODEL --device cuda --prefill 2048 7500 \
      --decode 1x7500 --json $OUT/ab/ab_${v}_$r.json >/dev/null 2>$OUT/ab/ab_${v}_$r.err
    python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], ' '.join(f\"p{x['tokens']}={x['ms']:.2f}\" for x in d['prefill']), ' '.join(f\"{x['batch']}x{x['ctx']}={x['ms']:.3f}\" for x in d['decode']))" $OUT/ab/ab_${v}_$r.json "$v r$r" || tail -3 $OUT/ab/ab_${v}_$r.err
done
cd $OUT && tar czf results.tgz ab && rm -rf ab
