#!/usr/bin/env bash
# A flood through 1p1d on one H200 under MPS: 100 prompts of 7500 tokens / 200 out sent at once
# (rate inf, vLLM's benchmark default), then the reference workload (30 prompts, 1 req/s).
set -u
G=$PWD/.gpu
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
MODEL=/tmp/llama-3.1-8b
mkdir -p $OUT/flood
[ -f "$MODEL/config.json" ] || "$G"/bin/tandem make-model --config llama-3.1-8b --out "$MODEL" --dtype bf16 \
    --tokenizer "$TANDEM_SHARED/golden/models/llama3-tokenizer" >/dev/null || exit 1
export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
nvidia-cuda-mps-control -d || exit 1
PYTHONUNBUFFERED=1 timeout 300 python3 $G/gpu_disagg.py bench $G/bin/tandem $MODEL $OUT/flood flood100 \
    --num-prompts 100 --request-rate inf --burstiness 1 > $OUT/flood/run.log 2>&1
echo "flood rc=$?"
grep -E "Successful|Failed|Mean TTFT|Mean ITL|duration" $OUT/flood/run.log
grep -E "WARN|ERROR|busy|unhealthy" $OUT/flood/flood100-proxy.log | sed 's/cmpl-[0-9a-f]*//g' | cut -c30- | cut -c1-200 | sort | uniq -c | sort -rn | head -8
tail -3 $OUT/flood/run.log
PYTHONUNBUFFERED=1 timeout 170 python3 $G/gpu_disagg.py bench $G/bin/tandem $MODEL $OUT/flood 1p1d-gpu0-mps > $OUT/flood/ref.log 2>&1
echo "reference rc=$?"
grep -E "Successful|Failed|Mean TTFT|Mean ITL" $OUT/flood/ref.log
tail -1 $OUT/flood/ref.log | cut -c1-300
echo quit | nvidia-cuda-mps-control
cd $OUT && tar czf results.tgz flood && rm -rf flood
