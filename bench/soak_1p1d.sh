#!/usr/bin/env bash
# Soak benchmark (not a test): the 1p1d system — prefiller, decoder and proxy started through the
# example's launcher, stories260K on CPU — under `tandem bench serve` at --max-concurrency 64 for
# --duration seconds (default 600), in back-to-back rounds of random 128-token prompts and
# 64-token answers (ignore-eos). Records the requests served, the failures (must be 0) and each
# process's resident memory (VmRSS) after a warm-up round and at the end (must stay within 5%),
# as JSON with the machine and the date (plus each process's VmRSS after every round, to tell a
# leak from an allocator settling). Exits 1 if either check fails.
# Usage: bench/soak_1p1d.sh [--duration S] [--result FILE] [--note TEXT]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DURATION=600
RESULT="$REPO/bench/results/soak-1p1d-$(date -u +%Y-%m-%d).json"
NOTE=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --result) RESULT=$2; shift 2 ;;
    --note) NOTE=$2; shift 2 ;;
    *) echo "soak_1p1d.sh: unknown argument '$1' (--duration S, --result FILE, --note TEXT)" >&2; exit 2 ;;
  esac
done
[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || { echo "--duration: '$DURATION' is not a positive number of seconds" >&2; exit 2; }
TANDEM_BIN="${TANDEM_BIN:-$REPO/build/tandem}"
[[ -x $TANDEM_BIN ]] || { echo "TANDEM_BIN=$TANDEM_BIN is not an executable (build first)" >&2; exit 2; }
export TANDEM_BIN
MODEL="${MODEL:-$(cd "${TANDEM_SHARED:-$REPO/../shared}/golden/models/stories260K" && pwd)}"
export MODEL
export PREFILLER_PORT="${PREFILLER_PORT:-27100}" DECODER_PORT="${DECODER_PORT:-27200}"
export DECODER_INIT_PORT="${DECODER_INIT_PORT:-27300}" DECODER_ALLOC_PORT="${DECODER_ALLOC_PORT:-27400}"
export PROXY_PORT="${PROXY_PORT:-29100}" PROXY_NOTIFY_PORT="${PROXY_NOTIFY_PORT:-27500}"
WORK="$(mktemp -d /tmp/tandem-soak.XXXXXX)"
LAUNCHER="$REPO/examples/disagg_prefill/1p1d/disagg_tandem_launcher.sh"
CONCURRENCY=64
ROUND_PROMPTS=1000

# The launcher execs tandem: each PID below is the server itself.
declare -A PIDS
start_role() {
  "$LAUNCHER" "$1" >"$WORK/$1.log" 2>&1 &
  PIDS[$1]=$!
}
stop_all() {
  for role in proxy prefiller decoder; do
    [[ -n ${PIDS[$role]:-} ]] && kill -INT "${PIDS[$role]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap stop_all EXIT

wait_health() {  # role port
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$2/health" >/dev/null && return 0
    kill -0 "${PIDS[$1]}" 2>/dev/null || { echo "the $1 died; its log:" >&2; cat "$WORK/$1.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "the $1 did not answer /health on port $2 within 60 s; its log: $WORK/$1.log" >&2
  exit 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# One round: ROUND_PROMPTS requests, at most CONCURRENCY in flight; its result file.
round() {
  local name=$1 prompts=$2
  "$TANDEM_BIN" bench serve --host 127.0.0.1 --port "$PROXY_PORT" --model "$MODEL" \
    --dataset-name random --random-input-len 128 --random-output-len 64 --num-prompts "$prompts" \
    --request-rate inf --max-concurrency "$CONCURRENCY" --ignore-eos --seed "$RANDOM" \
    --disable-tqdm --save-result --result-dir "$WORK" --result-filename "$name.json" \
    >"$WORK/$name.txt" 2>&1 || { echo "bench serve failed; see $WORK/$name.txt" >&2; cat "$WORK/$name.txt" >&2; exit 1; }
}

start_role decoder
start_role prefiller
wait_health decoder "$DECODER_PORT"
wait_health prefiller "$PREFILLER_PORT"
start_role proxy
wait_health proxy "$PROXY_PORT"

# Warm-up: two rounds, so that the allocators' pools and the engines' buffers reach their working
# size before the start figure is taken.
round warmup 2000
declare -A RSS_START
for role in prefiller decoder proxy; do RSS_START[$role]=$(rss_kib "${PIDS[$role]}"); done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START=$SECONDS
n=0
: >"$WORK/rss_series.txt"  # after each round: seconds, then each role's VmRSS in KiB
while (( SECONDS - START < DURATION )); do
  n=$((n + 1))
  round "round$n" "$ROUND_PROMPTS"
  echo "$((SECONDS - START)) $(rss_kib "${PIDS[prefiller]}") $(rss_kib "${PIDS[decoder]}") $(rss_kib "${PIDS[proxy]}")" \
    >>"$WORK/rss_series.txt"
done
ELAPSED=$((SECONDS - START))
declare -A RSS_END
for role in prefiller decoder proxy; do RSS_END[$role]=$(rss_kib "${PIDS[$role]}"); done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
for role in prefiller decoder proxy; do
  kill -0 "${PIDS[$role]}" 2>/dev/null || { echo "the $role died during the soak" >&2; exit 1; }
done

mkdir -p "$(dirname "$RESULT")"
python3 - "$WORK" "$n" "$ELAPSED" "$RESULT" <<PY
import json, os, platform, socket, sys, datetime, glob
work, rounds, elapsed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
completed = failed = 0
errors = {}
for i in range(1, rounds + 1):
    r = json.load(open(os.path.join(work, f"round{i}.json")))
    completed += r["completed"]
    failed += r["failed"]
    for request in r.get("requests", []) or []:
        if not request.get("success", True):
            reason = request.get("error", "") or "(no reason)"
            errors[reason] = errors.get(reason, 0) + 1
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
mem_kib = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")))
rss = {}
flat = True
for role, start, end in [("prefiller", ${RSS_START[prefiller]}, ${RSS_END[prefiller]}),
                         ("decoder", ${RSS_START[decoder]}, ${RSS_END[decoder]}),
                         ("proxy", ${RSS_START[proxy]}, ${RSS_END[proxy]})]:
    change = 100.0 * (end - start) / start
    rss[role] = {"start_kib": start, "end_kib": end, "change_percent": round(change, 2)}
    flat = flat and abs(change) <= 5.0
series = [[int(x) for x in line.split()] for line in open(os.path.join(work, "rss_series.txt")) if line.strip()]
for i, role in enumerate(["prefiller", "decoder", "proxy"]):
    rss[role]["after_each_round_kib"] = [row[i + 1] for row in series]
rss["round_end_seconds"] = [row[0] for row in series]
result = {
    "benchmark": "soak_1p1d",
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
                "kernel": platform.release(), "os": platform.platform()},
    "note": """$NOTE""",
    "load_average_start": "$LOAD_START", "load_average_end": "$LOAD_END",
    "system": "1p1d: prefiller + decoder (tandem serve, CPU) + tandem proxy, via disagg_tandem_launcher.sh",
    "model": os.path.basename("$MODEL"),
    "workload": {"client": "tandem bench serve", "max_concurrency": $CONCURRENCY, "request_rate": "inf",
                 "random_input_len": 128, "random_output_len": 64, "ignore_eos": True,
                 "prompts_per_round": $ROUND_PROMPTS, "warmup_prompts": 2000},
    "duration_s": elapsed, "rounds": rounds,
    "requests_served": completed, "requests_failed": failed, "failure_reasons": errors,
    "requests_per_s": round(completed / elapsed, 2) if elapsed else 0,
    "rss": rss,
    "checks": {"zero_errors": failed == 0, "rss_flat_within_5_percent": flat},
}
json.dump(result, open(out, "w"), indent=2)
open(out, "a").write("\n")
print(json.dumps(result, indent=2))
sys.exit(0 if failed == 0 and flat else 1)
PY
