#!/usr/bin/env bash
# The main job on a fresh Debian machine: installs dependencies, builds, and generates a story
# with the default small model (../shared/golden/models/stories260K).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
MODEL="${TANDEM_MODEL:-${TANDEM_SHARED:-../shared}/golden/models/stories260K}"
./build/tandem generate --model "$MODEL" --prompt "Once upon a time" --max-tokens 64 --temperature 0
