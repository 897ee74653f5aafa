#!/usr/bin/env bash
# few_rows_gemm up to 32 rows: its test; gemm_bench; ABBA base / max rows 8 / max rows 32; then the
# suite + checks + bench beside torch_peer with the better max rows (by 32x2048).
set -u
G=$PWD/.gpu
mkdir -p $OUT/ab $OUT/run
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv > $OUT/ab/gpu.txt
MODEL=/tmp/llama-3.1-8b
[ -f $MODEL/config.json ] || $G/bin/tandem make-model --config llama-3.1-8b --out $MODEL --dtype bf16 --tokenizer $TANDEM_SHARED/golden/models/llama3-tokenizer >/dev/null 2>&1 &
MK=$!
timeout 120 $G/bin/test_cuda --gtest_filter='*FewRows*:*Gemm*' > $OUT/ab/few_rows_test.txt 2>&1; rc=$?
tail -3 $OUT/ab/few_rows_test.txt
if [ $rc != 0 ]; then grep -B2 -A8 "Failure" $OUT/ab/few_rows_test.txt | head -60; cd $OUT && tar czf results.tgz ab; exit 0; fi
TANDEM_CUDA_PDL=0 timeout 120 $G/bin/gemm_bench --quick 1 8 16 32 > $OUT/ab/gemm_bench.json 2> $OUT/ab/gemm_bench.txt
echo "== gemm_bench, no PDL"; cut -c1-60 $OUT/ab/gemm_bench.txt | grep -v lm_head
wait $MK
r=0
for v in base mr8 mr32 mr32 mr8 base; do
    r=$((r + 1))
    e="TANDEM_FEW_ROWS_GEMM=0"; [ $v = mr8 ] && e="TANDEM_FRG_MAX_ROWS=8"; [ $v = mr32 ] && e="TANDEM_FRG_MAX_ROWS=32"
    env $e timeout 80 $G/bin/tandem bench-model --model $MODEL --device cuda --prefill 7500 \
      --decode 1x7500 16x2048 32x2048 --json $OUT/ab/ab_${v}_$r.json >/dev/null 2>&1
    python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], ' '.join(f\"p{x['tokens']}={x['ms']:.2f}\" for x in d['prefill']), ' '.join(f\"{x['batch']}x{x['ctx']}={x['ms']:.3f}\" for x in d['decode']))" $OUT/ab/ab_${v}_$r.json "$v r$r"
done
BEST=$(python3 -c "
import json,glob
def m(v): 
  xs=[x['ms'] for f in glob.glob('$OUT/ab/ab_'+v+'_*.json') for x in json.load(open(f))['decode'] if x['batch'] in (16,32)]
  return sum(xs)
print(32 if m('mr32') < m('mr8') else 8)")
echo "max rows chosen: $BEST"
export TANDEM_FRG_MAX_ROWS=$BEST
OUT=$OUT/run timeout 330 bash $G/gpu_run.sh --bench > $OUT/run/gpu_run.log 2>&1; echo "gpu_run rc=$?"
grep -E "PASSED|FAILED|Failure|equal|ratio|target" $OUT/run/gpu_run.log | tail -16
python3 -c "import json; d=json.load(open('$OUT/run/bench_result.json')); print(json.dumps(d.get('ratios', d), indent=0)[:1500])" 2>/dev/null
cd $OUT && tar czf results.tgz ab run && rm -rf ab run
