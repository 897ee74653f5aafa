#!/usr/bin/env bash
# Installs every build and test dependency of Tandem from Debian's packages (Debian 12).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git ca-certificates curl \
  libpcre2-dev nlohmann-json3-dev libyaml-cpp-dev libcpp-httplib-dev libssl-dev \
  libspdlog-dev libfmt-dev libcli11-dev libucx-dev \
  libgtest-dev libgmock-dev libbenchmark-dev python3 >/dev/null
