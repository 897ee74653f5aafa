#!/usr/bin/env bash
# main (13e2e43) exactly: CUDA suite + generate/serve checks, no bench.
set -u
G=$PWD/.gpu
mkdir -p $OUT/run
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv > $OUT/run/gpu.txt
OUT=$OUT/run timeout 280 bash $G/gpu_run.sh > $OUT/run/gpu_run.log 2>&1; echo "gpu_run rc=$?"
grep -E "PASSED|FAILED|Failure|equal" $OUT/run/gpu_run.log | tail -8
cd $OUT && tar czf results.tgz run && rm -rf run
