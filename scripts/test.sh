#!/usr/bin/env bash
# Installs dependencies (Debian), builds, and runs every CPU test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
cd build && ctest --output-on-failure -j"$(nproc)" -LE cuda
