#!/usr/bin/env bash
# The main job on a fresh Debian machine: installs dependencies, builds, starts the 1p1d
# disaggregated-prefill example (prefiller :7100, decoder :7200, proxy :9100 — see
# examples/disagg_prefill/1p1d/) with the default small model
# (../shared/golden/models/stories260K), sends one completion request through the proxy,
# prints the answer, and stops all three servers. TANDEM_MODEL picks another model directory;
# the launcher's *_PORT variables move the ports.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh

MODEL_DIR="${TANDEM_MODEL:-${TANDEM_SHARED:-../shared}/golden/models/stories260K}"
MODEL="$(cd "$MODEL_DIR" && pwd -P)"
PROXY_PORT="${PROXY_PORT:-9100}"
LOG_DIR="$(mktemp -d /tmp/tandem-1p1d.XXXXXX)"
export MODEL PROXY_PORT LOG_DIR TANDEM_BIN="$PWD/build/tandem"

# The launcher in its own process group, so that stopping it stops everything it started.
setsid bash examples/disagg_prefill/1p1d/disagg_example_1p1d.sh >"$LOG_DIR/launcher.out" 2>&1 &
LAUNCHER_PID=$!
stop_launcher() {
    kill -TERM "$LAUNCHER_PID" 2>/dev/null || true
    wait "$LAUNCHER_PID" 2>/dev/null || true
}
trap stop_launcher EXIT

until grep -q "All servers are up" "$LOG_DIR/launcher.out"; do
    if ! kill -0 "$LAUNCHER_PID" 2>/dev/null; then
        cat "$LOG_DIR/launcher.out" >&2
        echo "The 1p1d example failed to start; logs in $LOG_DIR" >&2
        exit 1
    fi
    sleep 0.5
done
echo "prefiller, decoder and proxy are up (logs in $LOG_DIR); one request through port $PROXY_PORT:"
curl -sS --fail-with-body -X POST "http://localhost:$PROXY_PORT/v1/completions" \
    -H "Content-Type: application/json" \
    -d "{\"model\": \"$MODEL\", \"prompt\": \"Once upon a time\", \"max_tokens\": 64, \"temperature\": 0}"
echo
