#!/usr/bin/env bash
# Installs every build and test dependency of Tandem from Debian's packages (Debian 12).
# Does nothing when they are all installed already.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libpcre2-dev nlohmann-json3-dev libyaml-cpp-dev libcpp-httplib-dev libssl-dev
  libfmt-dev libcli11-dev libucx-dev libboost-dev libjemalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev python3
  clang libclang-rt-14-dev  # sanitizer builds and fuzz targets: clang 14, its sanitizer runtimes and libFuzzer
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js runs the openai-client test; use the machine's own if it has one.
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  APT=(apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO "${APT[@]}" install "${missing[@]}" >/dev/null
fi
# The official `openai` npm package (v4) for tests/server/openai_node_test.cpp, installed into
# build/openai_node where the test looks (it installs it itself, or skips, when this did not).
NODE_DIR="${TANDEM_OPENAI_NODE_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build/openai_node}"
if command -v npm >/dev/null && [ ! -f "$NODE_DIR/node_modules/openai/package.json" ]; then
  mkdir -p "$NODE_DIR"
  cp "$(dirname "$0")/../tests/server/openai_node/package.json" "$NODE_DIR/"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --silent) ||
    echo "warning: npm install openai@4 failed; the openai SDK test will be skipped" >&2
fi
