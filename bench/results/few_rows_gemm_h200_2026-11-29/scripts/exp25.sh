#!/usr/bin/env bash
set -u
G=$PWD/.gpu
mkdir -p $OUT/ab
export LD_LIBRARY_PATH="$G/bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TANDEM_CUDA_PDL=0
for b in 4 8 16; do
for kb in 200 120; do
TANDEM_FRG_BOXES=$b TANDEM_FRG_SMEM_KB=$kb timeout 60 $G/bin/gemm_bench --quick 1 > $OUT/ab/gb_${b}_$kb.json 2> $OUT/ab/gb_${b}_$kb.txt
echo "== boxes $b smem $kb"; cut -c1-60 $OUT/ab/gb_${b}_$kb.txt | grep -v lm_head
done; done
cd $OUT && tar czf results.tgz ab && rm -rf ab
