#!/usr/bin/env bash
# Installs dependencies (Debian), builds, and runs every test suite with ctest: what CI runs on a
# 2-core machine with 90 minutes, so each CPU test is built once, with its checks on.
#   build-cuda/ (where nvcc is installed): the CUDA backend compiled for sm_90 — the kernels, the
#     code that drives them, everything under TANDEM_WITH_CUDA and the CUDA tests — but not
#     linked or run: that needs a GPU (scripts/gpu_run.sh).
#   build-asan/, build-tsan/ (scripts/test_sanitizers.sh): every CPU test under ASan + UBSan, and
#     the concurrency tests again under TSan.
#   build-fuzz/ (scripts/test_fuzz.sh): the fuzz targets, each for a bounded time.
# `./scripts/build.sh && (cd build && ctest)` runs every test in the Release build instead.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  start=$SECONDS
  cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DTANDEM_CUDA=ON >/dev/null
  # The objects of every source that is CUDA or changes with it (TANDEM_WITH_CUDA), each compiled
  # by its own command: ninja would first build what the targets' objects order-depend on (all of
  # tandem).
  with_cuda=$(grep -rl TANDEM_WITH_CUDA src apps tests --include='*.cpp' | sed 's|.*/||; s|$|.o|')
  objects=$(ninja -C build-cuda -t targets all |
            awk -F: '/\.(cu|cpp)\.o:/ {print $1}' |
            grep -E "(cuda|$(echo $with_cuda | tr ' ' '|'))")
  pids=()
  for object in $objects; do
    mkdir -p "build-cuda/$(dirname "$object")"
    command=$(ninja -C build-cuda -t commands -s "$object")
    (cd build-cuda && eval "$command") &
    pids+=($!)
    while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do sleep 0.5; done
  done
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ "$failed" = 0 ] || { echo "[test] the CUDA backend did not compile" >&2; exit 1; }
  echo "[test] CUDA backend compiled: $((SECONDS - start)) s"
fi
./scripts/test_sanitizers.sh
./scripts/test_fuzz.sh
