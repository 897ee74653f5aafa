#!/usr/bin/env bash
set -u
G=$PWD/.gpu
mkdir -p $OUT/ab
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_CUDA_PDL=0
# launches of few_rows kernels with m=1: qkv 0-32, o 33-65, gate_up 66-98, down 99-131
for skip in 99 33; do
timeout 120 ncu -k regex:few_rows --launch-skip $skip --launch-count 1 --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy \
  $G/bin/gemm_bench --quick 1 > $OUT/ab/ncu_few_$skip.txt 2>&1
grep -E "Duration|DRAM Throughput|Memory Throughput|Stall|Warp Cycles|Issued|Registers|Shared Memory Config|Dynamic Shared|Block Limit|Achieved Occ|L2 Hit|Mem Busy|Max Bandwidth" $OUT/ab/ncu_few_$skip.txt | head -40
echo ----
done
timeout 120 ncu -k regex:nvjet --launch-skip 198 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section LaunchStats \
  $G/bin/gemm_bench --quick 1 > $OUT/ab/ncu_cublas_down.txt 2>&1
grep -E "nvjet|Duration|DRAM Throughput|Stall|Warp Cycles|Grid Size|Block Size|Dynamic Shared|Registers" $OUT/ab/ncu_cublas_down.txt | head -20
cd $OUT && tar czf results.tgz ab && rm -rf ab
