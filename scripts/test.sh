#!/usr/bin/env bash
# Installs dependencies (Debian), builds, and runs every test suite with ctest (what CI runs).
#   build/ (Release): the tandem binary and the tests that must run uninstrumented: the
#     benchmark client's (1 ms timing tolerances), the seed benchmark's smoke run and, where nvcc
#     is installed, the CUDA backend (-DTANDEM_CUDA=ON) with its tests (label cuda), which skip
#     themselves without a GPU and run for real through scripts/gpu_run.sh.
#   build-asan/, build-tsan/ (scripts/test_sanitizers.sh): every other CPU test under ASan +
#     UBSan, and the concurrency tests again under TSan (SANITIZERS=asan or tsan picks one).
#   build-fuzz/ (scripts/test_fuzz.sh): the fuzz targets, each for a bounded time.
# Every CPU test is built once with its checks on rather than twice (a 2-core CI has 90 minutes);
# `./scripts/build.sh && (cd build && ctest)` runs all of them uninstrumented.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
CUDA_FLAGS=()
TARGETS=(tandem test_bench)
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  CUDA_FLAGS=(-DTANDEM_CUDA=ON)
  TARGETS+=(test_cuda)
fi
start=$SECONDS
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${CUDA_FLAGS[@]}" >/dev/null
ninja -C build "${TARGETS[@]}"
echo "[test] release build: $((SECONDS - start)) s"
# The tests of the targets built above (the rest show up as <target>_NOT_BUILT).
(cd build && ctest --output-on-failure -j"$(nproc)" -E '_NOT_BUILT')
echo "[test] release build + tests: $((SECONDS - start)) s"
./scripts/test_sanitizers.sh
./scripts/test_fuzz.sh
