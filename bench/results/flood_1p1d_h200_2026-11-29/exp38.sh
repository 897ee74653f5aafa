#!/usr/bin/env bash
# Faults under load through 1p1d on one H200 under MPS: a hang-up storm, and the prefiller killed
# with 40 requests in flight (gpu_storm.py).
set -u
G=$PWD/.gpu
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
MODEL=/tmp/llama-3.1-8b
mkdir -p $OUT/storm
"$G"/bin/tandem make-model --config llama-3.1-8b --out "$MODEL" --dtype bf16 \
    --tokenizer "$TANDEM_SHARED/golden/models/llama3-tokenizer" >/dev/null || exit 1
export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
nvidia-cuda-mps-control -d || exit 1
PYTHONUNBUFFERED=1 timeout 420 python3 $G/gpu_storm.py $G/bin/tandem $MODEL $OUT/storm > $OUT/storm/run.log 2>&1
echo "storm rc=$?"
echo quit | nvidia-cuda-mps-control
tail -40 $OUT/storm/run.log
grep -E "WARN|ERROR" $OUT/storm/proxy.log | sed 's/cmpl-[0-9a-f]*//g' | cut -c30- | cut -c1-160 | sort | uniq -c | sort -rn | head -8
cd $OUT && tar czf results.tgz storm && rm -rf storm
