#!/usr/bin/env bash
# ncu: swiglu_gemm (cluster 2, group 8) against cuBLAS's gate/up GEMM at 7500 rows.
set -u
G=$PWD/.gpu
mkdir -p $OUT/ncu
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
NCU=$(ls /usr/local/cuda/bin/ncu 2>/dev/null || which ncu)
TANDEM_SWIGLU_CLUSTER=2 TANDEM_SWIGLU_GROUP=8 timeout 200 $NCU --kernel-name regex:swiglu --launch-skip 3 --launch-count 1 \
  --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section LaunchStats --section Occupancy \
  $G/bin/gemm_bench --quick --random --only gate_up_proj 7500 > $OUT/ncu/ncu.txt 2>&1; echo "ncu rc=$?"
grep -E "swiglu_gemm_kernel|nvjet|Duration|Pipe|pipe|Tensor|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|DRAM Throughput|Stall|Issued Ipc|SM Busy|Executed Ipc|Warp Cycles Per Issued|No Eligible|Registers Per|Block Limit Shared|L1/TEX Hit|L2 Hit|Mem Busy|Max Bandwidth|Mem Pipes" $OUT/ncu/ncu.txt | head -80
cd $OUT && tar czf results.tgz ncu && rm -rf ncu
