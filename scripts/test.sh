#!/usr/bin/env bash
# Installs dependencies (Debian), builds, and runs every test suite with ctest. Where nvcc is
# installed the CUDA backend is built too (-DTANDEM_CUDA=ON); its tests (label cuda) skip
# themselves on a machine without a GPU and run for real through scripts/gpu_run.sh. Then the
# CPU tests again under ASan + UBSan and the concurrency tests under TSan
# (scripts/test_sanitizers.sh; SANITIZERS=asan or tsan picks one, SANITIZERS= none) and the fuzz
# targets, each for a bounded time (scripts/test_fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
CUDA_FLAGS=()
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then CUDA_FLAGS=(-DTANDEM_CUDA=ON); fi
./scripts/build.sh "${CUDA_FLAGS[@]}"
(cd build && ctest --output-on-failure -j"$(nproc)")
# CPU-only builds of their own: build-asan/, build-tsan/.
./scripts/test_sanitizers.sh
./scripts/test_fuzz.sh
