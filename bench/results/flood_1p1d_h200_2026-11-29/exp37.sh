#!/usr/bin/env bash
# The flood on two H200s (prefiller GPU 0, decoder GPU 1, KV over NVLink by CUDA IPC): 100 prompts
# of 7500 tokens / 200 out at once; then the reference workload on the same layout.
set -u
G=$PWD/.gpu
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_SHARED="$G/shared"
MODEL=/tmp/llama-3.1-8b
mkdir -p $OUT/flood2gpu
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv > $OUT/flood2gpu/gpu.txt
"$G"/bin/tandem make-model --config llama-3.1-8b --out "$MODEL" --dtype bf16 \
    --tokenizer "$TANDEM_SHARED/golden/models/llama3-tokenizer" >/dev/null || exit 1
PYTHONUNBUFFERED=1 timeout 300 python3 $G/gpu_disagg.py bench $G/bin/tandem $MODEL $OUT/flood2gpu flood100 \
    --num-prompts 100 --request-rate inf --burstiness 1 --prefiller-gpu 0 --decoder-gpu 1 > $OUT/flood2gpu/run.log 2>&1
echo "flood rc=$?"
grep -E "Successful|Failed|Mean TTFT|Mean ITL|duration" $OUT/flood2gpu/run.log
grep -E "WARN|ERROR" $OUT/flood2gpu/flood100-proxy.log | sed 's/cmpl-[0-9a-f]*//g' | cut -c30- | cut -c1-200 | sort | uniq -c | sort -rn | head -5
tail -1 $OUT/flood2gpu/run.log | cut -c1-300
PYTHONUNBUFFERED=1 timeout 170 python3 $G/gpu_disagg.py bench $G/bin/tandem $MODEL $OUT/flood2gpu 1p1d-gpu0-gpu1 \
    --prefiller-gpu 0 --decoder-gpu 1 > $OUT/flood2gpu/ref.log 2>&1
echo "reference rc=$?"
grep -E "Successful|Failed|Mean TTFT|Mean ITL" $OUT/flood2gpu/ref.log
tail -1 $OUT/flood2gpu/ref.log | cut -c1-300
cd $OUT && tar czf results.tgz flood2gpu && rm -rf flood2gpu
