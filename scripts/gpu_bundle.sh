#!/usr/bin/env bash
# Builds Tandem with the CUDA backend here and packs what a run on the GPU machine needs into
# .gpu/ (git-ignored; the device call carries it): the binaries, every shared library they load
# that the GPU machine (Ubuntu 24.04 + CUDA 13 + UCX, no Debian -dev packages) may lack, copied
# beside them (RPATH $ORIGIN, LD_LIBRARY_PATH in gpu_run.sh), and the ../shared data the GPU tests
# and benchmarks read (golden models and logits, the llama3 tokenizer, bench/torch_peer.py).
# Usage: scripts/gpu_bundle.sh [targets...]   (default: tandem test_cuda; attention_bench is
# the prefill-attention micro-benchmark); JOBS=n for ninja -j; BUILD_DIR the build folder (build).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${TANDEM_SHARED:-../shared}"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(tandem test_cuda)
B="${BUILD_DIR:-build}"
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTANDEM_CUDA=ON -DTANDEM_BUILD_BENCH=ON >/dev/null
nice ninja -C "$B" -j"${JOBS:-1}" "${TARGETS[@]}"

rm -rf .gpu && mkdir -p .gpu/bin .gpu/shared/golden .gpu/shared/bench
# Test binaries live in $B/tests/, micro-benchmarks in $B/bench/, tandem in $B/.
binary() {
  for d in "$B/tests" "$B/bench"; do [ -f "$d/$1" ] && { echo "$d/$1"; return; }; done
  echo "$B/$1"
}
for t in "${TARGETS[@]}"; do
  cp "$(binary "$t")" .gpu/bin/
  strip --strip-unneeded ".gpu/bin/$t"
done
# Libraries the GPU machine provides itself: glibc, the C++ runtime, the CUDA driver/toolkit, UCX.
SYSTEM_LIBS='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libstdc\+\+|libgcc_s|libcuda\.|libcudart|libcublas|libnvidia|libuc[pmst])'
for t in "${TARGETS[@]}"; do
  ldd "$(binary "$t")" | awk '$3 ~ /^\// {print $1, $3}' | while read -r name path; do
    if ! [[ "$name" =~ $SYSTEM_LIBS ]]; then cp -L "$path" ".gpu/bin/$name"; fi
  done
done
cp -r "$SHARED/golden/models" "$SHARED/golden/logits" .gpu/shared/golden/
cp "$SHARED/bench/torch_peer.py" .gpu/shared/bench/
cp scripts/gpu_run.sh scripts/merge_bench.py scripts/gpu_serve_check.py scripts/gpu_disagg.py scripts/ncu_step_breakdown.py .gpu/
echo "bundle: $(du -sh .gpu | cut -f1) in .gpu/ ($(ls .gpu/bin | tr '\n' ' '))"
