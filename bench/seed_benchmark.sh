#!/usr/bin/env bash
# The reference benchmark in one command: runs `tandem bench serve` with the reference workload
# (random 7500-token prompts, 200 output tokens, 30 prompts at 1 req/s, burstiness 100,
# --ignore-eos) against a single non-disaggregated `tandem serve` and against the 1p1d system
# (examples/disagg_prefill/1p1d/disagg_example_1p1d.sh: prefiller + decoder + proxy), one after
# the other on the same machine, saves both results and prints them side by side with ratios.
#
# Usage: bench/seed_benchmark.sh [--cpu | --smoke] [--mode both|single|1p1d] [workload flags]
#   --cpu      the workload scaled to a CPU and stories260K's 512-token context:
#              --input-len 448 --output-len 32 (30 prompts, 1 req/s, burstiness 100)
#   --smoke    a short run for CI (input 32, output 8, 6 prompts at 4 req/s); fails unless
#              every request of every system succeeds
#   --input-len N --output-len N --num-prompts N --request-rate R --burstiness B
#   --mode     which systems to run (default both)
#   --result-dir DIR   where the result JSONs go (default bench/results)
#   --tag NAME         result file name prefix (default seed-<workload>)
# Environment: MODEL (default the shared stories260K), TANDEM_BIN (default build/tandem),
# TANDEM_DEVICE (cpu | cuda, default cpu), SEED_METADATA (extra KEY=VALUE pairs for the JSON).
# Servers use free ports picked at start; their logs go to a temporary folder named at the end.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
LAUNCHER="$REPO_DIR/examples/disagg_prefill/1p1d/disagg_example_1p1d.sh"

INPUT_LEN=7500 OUTPUT_LEN=200 NUM_PROMPTS=30 REQUEST_RATE=1 BURSTINESS=100
MODE=both SMOKE=0 RESULT_DIR="$REPO_DIR/bench/results" TAG=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --cpu) INPUT_LEN=448 OUTPUT_LEN=32 NUM_PROMPTS=30 REQUEST_RATE=1 BURSTINESS=100; TAG=${TAG:-seed-cpu}; shift ;;
        --smoke) INPUT_LEN=32 OUTPUT_LEN=8 NUM_PROMPTS=6 REQUEST_RATE=4 BURSTINESS=100 SMOKE=1; TAG=${TAG:-seed-smoke}; shift ;;
        --input-len) INPUT_LEN=$2; shift 2 ;;
        --output-len) OUTPUT_LEN=$2; shift 2 ;;
        --num-prompts) NUM_PROMPTS=$2; shift 2 ;;
        --request-rate) REQUEST_RATE=$2; shift 2 ;;
        --burstiness) BURSTINESS=$2; shift 2 ;;
        --mode) MODE=$2; shift 2 ;;
        --result-dir) RESULT_DIR=$2; shift 2 ;;
        --tag) TAG=$2; shift 2 ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "seed_benchmark.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$MODE" in both|single|1p1d) ;; *) echo "--mode must be both, single or 1p1d, got '$MODE'" >&2; exit 2 ;; esac
TAG=${TAG:-seed}

TANDEM="${TANDEM_BIN:-$REPO_DIR/build/tandem}"
[[ -x $TANDEM ]] || { echo "tandem not found at $TANDEM (build it, or set TANDEM_BIN)" >&2; exit 1; }
TANDEM="$(cd "$(dirname "$TANDEM")" && pwd)/$(basename "$TANDEM")"
if [[ -z "${MODEL:-}" ]]; then
    MODEL="${TANDEM_SHARED:-$REPO_DIR/../shared}/golden/models/stories260K"
fi
[[ -d $MODEL ]] || { echo "model directory $MODEL not found (set MODEL)" >&2; exit 1; }
MODEL="$(cd "$MODEL" && pwd)"
DEVICE="${TANDEM_DEVICE:-cpu}"
if [[ $MODE != single && ! -f $LAUNCHER ]]; then
    echo "the 1p1d launcher $LAUNCHER is missing (use --mode single)" >&2
    exit 1
fi

LOG_DIR="$(mktemp -d /tmp/tandem-seed-benchmark.XXXXXX)"
mkdir -p "$RESULT_DIR"
RESULT_DIR="$(cd "$RESULT_DIR" && pwd)"
SERVER_PID=""

# Sets variable NAME to a TCP port nothing listens on now and not handed out before in this
# run: the kernel's choice (python3), else a random one checked with bash's /dev/tcp.
USED_PORTS=" "
pick_port() {
    local _name=$1 _port
    for _ in $(seq 100); do
        if command -v python3 >/dev/null; then
            _port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        else
            _port=$((20000 + RANDOM % 40000))
            if (exec 3<>"/dev/tcp/127.0.0.1/$_port") 2>/dev/null; then continue; fi
        fi
        [[ $USED_PORTS == *" $_port "* ]] && continue
        USED_PORTS+="$_port "
        printf -v "$_name" '%s' "$_port"
        return
    done
    echo "no free port found" >&2
    return 1
}

# Stops the server started last (its whole process group), waiting up to 20 s.
stop_server() {
    [[ -z $SERVER_PID ]] && return
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 -- "-$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

# Whether GET http://127.0.0.1:PORT/health answers 200 (bash's /dev/tcp: no curl needed).
healthy() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
        read -r -t 5 status <&3 || exit 1
        [[ $status == *" 200"* ]]
    ) 2>/dev/null
}

# Waits until http://127.0.0.1:PORT/health answers while the server lives; fails naming LOG.
wait_healthy() {
    local port=$1 log=$2 deadline=$((SECONDS + ${HEALTH_TIMEOUT:-300}))
    while ! healthy "$port"; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null || ((SECONDS >= deadline)); then
            echo "ERROR: the server on port $port did not come up; the end of $log:" >&2
            tail -n 30 "$log" >&2
            return 1
        fi
        sleep 0.5
    done
}

# Runs the workload against PORT, saving RESULT_DIR/<TAG>-<system>.json and the printed block
# as <TAG>-<system>.txt.
run_bench() {
    local system=$1 port=$2
    local metadata=(system="$system" machine="$(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" device="$DEVICE")
    # shellcheck disable=SC2206
    [[ -n "${SEED_METADATA:-}" ]] && metadata+=($SEED_METADATA)
    echo "=== $system: $NUM_PROMPTS prompts, input $INPUT_LEN, output $OUTPUT_LEN, rate $REQUEST_RATE, burstiness $BURSTINESS ==="
    "$TANDEM" bench serve --host 127.0.0.1 --port "$port" --model "$MODEL" \
        --dataset-name random --random-input-len "$INPUT_LEN" --random-output-len "$OUTPUT_LEN" \
        --num-prompts "$NUM_PROMPTS" --request-rate "$REQUEST_RATE" --burstiness "$BURSTINESS" \
        --ignore-eos --seed 0 --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,90,99 \
        --save-result --result-dir "$RESULT_DIR" --result-filename "$TAG-$system.json" \
        --label "$system" --metadata "${metadata[@]}" | tee "$RESULT_DIR/$TAG-$system.txt" || true
    [[ -f "$RESULT_DIR/$TAG-$system.json" ]] || { echo "ERROR: no result from the $system run" >&2; return 1; }
}

run_single() {
    local port log="$LOG_DIR/single.log"
    pick_port port
    echo "Starting a single tandem serve on port $port (log: $log)"
    setsid "$TANDEM" serve "$MODEL" --host 127.0.0.1 --port "$port" --device "$DEVICE" \
        --disable-log-requests --enforce-eager --no-enable-prefix-caching >"$log" 2>&1 &
    SERVER_PID=$!
    wait_healthy "$port" "$log"
    run_bench single "$port"
    stop_server
}

run_1p1d() {
    local log="$LOG_DIR/1p1d.log"
    local -x PREFILLER_PORT DECODER_PORT DECODER_INIT_PORT DECODER_ALLOC_PORT PROXY_PORT PROXY_NOTIFY_PORT
    local name
    for name in PREFILLER_PORT DECODER_PORT DECODER_INIT_PORT DECODER_ALLOC_PORT PROXY_PORT \
        PROXY_NOTIFY_PORT; do
        pick_port "$name"
    done
    echo "Starting the 1p1d system, proxy on port $PROXY_PORT (logs: $LOG_DIR)"
    MODEL="$MODEL" TANDEM_BIN="$TANDEM" TANDEM_DEVICE="$DEVICE" LOG_DIR="$LOG_DIR" \
        setsid bash "$LAUNCHER" >"$log" 2>&1 &
    SERVER_PID=$!
    # The launcher checks every role's /health before it prints this line.
    local deadline=$((SECONDS + ${HEALTH_TIMEOUT:-300}))
    until grep -q "All servers are up" "$log" 2>/dev/null; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null || ((SECONDS >= deadline)); then
            echo "ERROR: the 1p1d system did not come up; the end of $log:" >&2
            tail -n 30 "$log" >&2
            return 1
        fi
        sleep 0.5
    done
    run_bench 1p1d "$PROXY_PORT"
    stop_server
}

[[ $MODE == single || $MODE == both ]] && run_single
[[ $MODE == 1p1d || $MODE == both ]] && run_1p1d

STATUS=0
for system in single 1p1d; do
    file="$RESULT_DIR/$TAG-$system.json"
    [[ $MODE == both || $MODE == "$system" ]] || continue
    "$TANDEM" bench plot "$file" >/dev/null
    if [[ $SMOKE == 1 ]]; then
        # Every request must succeed: "completed" equals the prompts and "failed" is 0.
        if ! grep -q "\"completed\": $NUM_PROMPTS," "$file" || ! grep -q '"failed": 0,' "$file"; then
            echo "SMOKE FAILURE: not every $system request succeeded (see $file)" >&2
            STATUS=1
        fi
    fi
done
if [[ $MODE == both ]]; then
    "$TANDEM" bench compare "$RESULT_DIR/$TAG-single.json" "$RESULT_DIR/$TAG-1p1d.json" \
        --names single 1p1d | tee "$RESULT_DIR/$TAG-comparison.txt"
fi
echo "Results: $RESULT_DIR/$TAG-*.json (SVG plots beside them); server logs: $LOG_DIR"
exit $STATUS
