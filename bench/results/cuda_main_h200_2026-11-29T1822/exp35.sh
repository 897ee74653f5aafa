#!/usr/bin/env bash
# Main (this session): CUDA suite + checks + 8B bench beside torch_peer, with the GPU's power, SM
# clock and temperature sampled every 100 ms; then 1p1d under MPS (the serving workload); then a
# second Tandem/peer pair for the spread.
set -u
G=$PWD/.gpu
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
mkdir -p $OUT/run $OUT/disagg $OUT/pair2
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv > $OUT/run/gpu.txt
nvidia-smi --query-gpu=timestamp,power.draw,clocks.sm,clocks.mem,temperature.gpu,clocks_throttle_reasons.active --format=csv -lms 100 > $OUT/run/power.csv 2>&1 &
SMI=$!
stamp() { echo "$(date +%H:%M:%S.%N | cut -c1-12) $*" >> $OUT/run/phases.txt; }
stamp gpu_run_start
OUT=$OUT/run timeout 330 bash $G/gpu_run.sh --bench > $OUT/run/gpu_run.log 2>&1; echo "gpu_run rc=$?"
stamp gpu_run_end
grep -E "PASSED|FAILED|Failure|equal" $OUT/run/gpu_run.log | tail -8
python3 -c "
import json; d=json.load(open('$OUT/run/bench_result.json'))
for k,v in d.get('ratios',{}).items(): print(k, v)" 2>/dev/null
MODEL=/tmp/llama-3.1-8b
export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
stamp disagg_start
if nvidia-cuda-mps-control -d; then
  PYTHONUNBUFFERED=1 timeout 170 python3 $G/gpu_disagg.py bench $G/bin/tandem $MODEL $OUT/disagg 1p1d-gpu0-mps > $OUT/disagg/run.log 2>&1
  echo "disagg rc=$?"
  echo quit | nvidia-cuda-mps-control
fi
stamp disagg_end
tail -12 $OUT/disagg/run.log
stamp pair2_tandem
$G/bin/tandem bench-model --model $MODEL --device cuda --json $OUT/pair2/tandem_bench.json >/dev/null 2>&1
stamp pair2_peer
PYTHONUNBUFFERED=1 python3 $TANDEM_SHARED/bench/torch_peer.py > $OUT/pair2/torch_peer.log 2>&1
stamp pair2_end
python3 $G/merge_bench.py $OUT/pair2/tandem_bench.json $OUT/pair2/torch_peer.log > $OUT/pair2/bench_result.json 2>/dev/null
python3 -c "
import json; d=json.load(open('$OUT/pair2/bench_result.json'))
for k,v in d.get('ratios',{}).items(): print('pair2', k, v)" 2>/dev/null
kill $SMI
cd $OUT && tar czf results.tgz run disagg pair2 && rm -rf run disagg pair2
