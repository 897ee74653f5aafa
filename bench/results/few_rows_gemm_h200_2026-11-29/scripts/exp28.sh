#!/usr/bin/env bash
# Final main with few_rows_gemm (m <= 16): suite + checks + bench beside torch_peer; then 1p1d on
# one H200 under MPS (issue 6's one-GPU serving targets).
set -u
G=$PWD/.gpu
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
mkdir -p $OUT/run $OUT/disagg
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv > $OUT/run/gpu.txt
OUT=$OUT/run timeout 300 bash $G/gpu_run.sh --bench > $OUT/run/gpu_run.log 2>&1; echo "gpu_run rc=$?"
grep -E "PASSED|FAILED|Failure|equal" $OUT/run/gpu_run.log | tail -8
python3 -c "
import json; d=json.load(open('$OUT/run/bench_result.json'))
for k,v in d.items():
  if isinstance(v,dict) and 'ratio' in v: print(k, v)" 2>/dev/null
(cd $OUT && tar czf results_bench.tgz run)
MODEL=/tmp/llama-3.1-8b
export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
if nvidia-cuda-mps-control -d; then
  PYTHONUNBUFFERED=1 timeout 170 python3 $G/gpu_disagg.py bench $G/bin/tandem $MODEL $OUT/disagg 1p1d-gpu0-mps > $OUT/disagg/run.log 2>&1
  echo "disagg rc=$?"
  echo quit | nvidia-cuda-mps-control
fi
tail -12 $OUT/disagg/run.log
cd $OUT && tar czf results_mps.tgz disagg && rm -rf run disagg
