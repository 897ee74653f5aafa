#!/usr/bin/env bash
# The 1p1d disaggregated-prefill example (LMCache's disagg_example_1p1d.sh, with Tandem): starts
# the prefiller (port 7100), the decoder (7200) and the proxy (9100) through
# disagg_tandem_launcher.sh, each logging to prefiller.log, decoder.log and proxy.log (in
# LOG_DIR, default this folder), waits until each answers /health, and then serves until Ctrl+C
# or until one of them dies — either way all three are stopped (their process groups, then
# waited for), so no process is left behind. Send requests to http://localhost:9100.
# Environment: MODEL, TANDEM_BIN, TANDEM_DEVICE, the *_PORT variables of the launcher,
# LOG_DIR, HEALTH_TIMEOUT (seconds per server, default 300). It starts nothing while one of those
# ports is in use (an earlier run still up), and names the port.
set -uo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LAUNCHER="$SCRIPT_DIR/disagg_tandem_launcher.sh"
LOG_DIR="${LOG_DIR:-$SCRIPT_DIR}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-300}"
PREFILLER_PORT="${PREFILLER_PORT:-7100}"
DECODER_PORT="${DECODER_PORT:-7200}"
PROXY_PORT="${PROXY_PORT:-9100}"
DECODER_INIT_PORT="${DECODER_INIT_PORT:-7300}"
DECODER_ALLOC_PORT="${DECODER_ALLOC_PORT:-7400}"
PROXY_NOTIFY_PORT="${PROXY_NOTIFY_PORT:-7500}"
# The model every role serves (the launcher's default: the shared stories260K).
if [[ -z "${MODEL:-}" ]]; then
    MODEL_DIR="${TANDEM_SHARED:-$SCRIPT_DIR/../../../../shared}/golden/models/stories260K"
    if [[ -d $MODEL_DIR ]]; then MODEL="$(cd "$MODEL_DIR" && pwd -P)"; else MODEL="$MODEL_DIR"; fi
fi
export MODEL

ROLES=(prefiller decoder proxy)
declare -A PIDS=()
declare -A PORTS=([prefiller]=$PREFILLER_PORT [decoder]=$DECODER_PORT [proxy]=$PROXY_PORT)
STOPPING=0

# Stops every role: SIGTERM to each process group, up to 15 s to exit, then SIGKILL.
cleanup() {
    [[ $STOPPING == 1 ]] && return
    STOPPING=1
    trap - INT TERM
    echo "Stopping prefiller, decoder and proxy..."
    for role in "${ROLES[@]}"; do
        local pid=${PIDS[$role]:-}
        [[ -n $pid ]] && kill -TERM -- "-$pid" 2>/dev/null
    done
    local deadline=$((SECONDS + 15))
    for role in "${ROLES[@]}"; do
        local pid=${PIDS[$role]:-}
        [[ -z $pid ]] && continue
        while kill -0 -- "-$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        if kill -0 -- "-$pid" 2>/dev/null; then
            echo "The $role did not stop within 15 s; killing it"
            kill -KILL -- "-$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    echo "All processes stopped."
}

on_signal() {
    cleanup
    exit 0
}

# Starts one role in its own session/process group, logging to LOG_DIR/<role>.log.
start_role() {
    local role=$1
    setsid bash "$LAUNCHER" "$role" >"$LOG_DIR/$role.log" 2>&1 &
    PIDS[$role]=$!
}

# Waits until http://localhost:PORT/health answers; fails naming the role and its log.
wait_for_health() {
    local role=$1 port=${PORTS[$1]} pid=${PIDS[$1]}
    local deadline=$((SECONDS + HEALTH_TIMEOUT))
    echo "Waiting for the $role on port $port..."
    while ! curl -sf "http://localhost:$port/health" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "ERROR: the $role exited during start-up; see $LOG_DIR/$role.log:" >&2
            tail -n 20 "$LOG_DIR/$role.log" >&2
            return 1
        fi
        if ((SECONDS >= deadline)); then
            echo "ERROR: the $role did not answer /health on port $port within ${HEALTH_TIMEOUT} s; see $LOG_DIR/$role.log" >&2
            return 1
        fi
        sleep 0.5
    done
}

# Fails naming the first of the system's ports that something already listens on (an earlier
# run still up would otherwise answer the health checks in place of the new servers).
check_ports_free() {
    local name port
    for name in PREFILLER_PORT DECODER_PORT DECODER_INIT_PORT DECODER_ALLOC_PORT PROXY_PORT \
                PROXY_NOTIFY_PORT; do
        port=${!name:-}
        [[ -z $port ]] && continue
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "ERROR: port $port ($name) is already in use (an earlier run still up?); stop what" \
                 "listens there or set $name to another port" >&2
            return 1
        fi
    done
}

main() {
    command -v curl >/dev/null || { echo "curl is needed to check the servers' health" >&2; exit 1; }
    check_ports_free || exit 1
    trap on_signal INT TERM
    mkdir -p "$LOG_DIR"
    echo "Launching prefiller, decoder and proxy..."
    echo "Please check $LOG_DIR/prefiller.log, decoder.log and proxy.log for logs."
    start_role proxy
    start_role decoder
    start_role prefiller
    for role in decoder prefiller proxy; do
        if ! wait_for_health "$role"; then
            cleanup
            exit 1
        fi
    done
    echo "==================================================="
    echo "All servers are up. You can send requests to http://localhost:$PROXY_PORT now, e.g."
    echo "  curl -X POST http://localhost:$PROXY_PORT/v1/completions -H \"Content-Type: application/json\" \\"
    echo "    -d '{\"model\": \"$MODEL\", \"prompt\": \"Once upon a time\", \"max_tokens\": 32}'"
    echo "Press Ctrl-C to terminate all instances."
    echo "==================================================="
    while true; do
        for role in "${ROLES[@]}"; do
            if ! kill -0 "${PIDS[$role]}" 2>/dev/null; then
                echo "ERROR: the $role exited; see $LOG_DIR/$role.log. Stopping the others." >&2
                cleanup
                exit 1
            fi
        done
        sleep 1 &
        wait $! 2>/dev/null
    done
}

main
