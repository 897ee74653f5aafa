#!/usr/bin/env bash
# TTFT with and without KV-tier reuse, on CPU, with a llama-3.2-1b-shaped random model (made by
# `tandem make-model`; --layers N keeps the 1B model's widths with fewer layers for slow
# machines). For REPEATS distinct 1,000-token prefixes, each followed by 24 new tokens:
#   off  - a server without tiers computes the whole prompt;
#   cold - a server with CPU + disk tiers computes it (and stores its chunks);
#   cpu  - the same server, a new suffix: the prefix comes from the CPU tier;
#   disk - that server restarted (CPU tier empty), a third suffix: the prefix comes from disk.
# Prefix caching is off so the engine's own cache serves nothing. Prints and saves JSON with
# the machine and date: bench/results/kv-tiers-ttft-<host>-<date>.json (or --out FILE).
# Usage: bench/kv_tiers_ttft.sh [--layers N] [--threads N] [--repeats N] [--out FILE]
# (--threads 0 = all cores; the JSON records the CPU model, core count and date)
set -euo pipefail
cd "$(dirname "$0")/.."
LAYERS=16 THREADS=0 REPEATS=3 PREFIX=1000 SUFFIX=24 CHUNK=250 OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --layers) LAYERS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --repeats) REPEATS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
BIN="${TANDEM_BIN:-build/tandem}"
SHARED="${TANDEM_SHARED:-../shared}"
WORK="$(mktemp -d /tmp/tandem-kv-tiers-bench.XXXXXX)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

python3 - "$LAYERS" "$WORK/config.json" <<'PY'
import json, sys
layers, out = int(sys.argv[1]), sys.argv[2]
c = {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 128000,
     "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "max_position_embeddings": 131072,
     "mlp_bias": False, "model_type": "llama", "num_attention_heads": 32, "num_key_value_heads": 8,
     "rms_norm_eps": 1e-5, "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0,
     "low_freq_factor": 1.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
     "rope_theta": 500000.0, "vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192,
     "num_hidden_layers": layers, "head_dim": 64, "tie_word_embeddings": True,
     "torch_dtype": "bfloat16"}
json.dump(c, open(out, "w"))
PY
"$BIN" make-model --config "$WORK/config.json" --out "$WORK/model" --dtype bf16 --seed 1 \
  --tokenizer "$SHARED/golden/models/llama3-tokenizer" >/dev/null

cat > "$WORK/tiers.yaml" <<YAML
chunk_size: $CHUNK
local_cpu: True
max_local_cpu_size: 4
local_disk: "file://$WORK/disk/"
max_local_disk_size: 4
YAML

start_server() {  # start_server LOG [tiers]
  local args=("$WORK/model" --port 0 --threads "$THREADS" --no-enable-prefix-caching
              --max-model-len 2048 --kv-cache-memory 512MiB --disable-log-requests)
  if [ "${2:-}" = tiers ]; then
    args+=(--kv-config "$WORK/tiers.yaml"
           --kv-transfer-config '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}')
  fi
  "$BIN" serve "${args[@]}" >"$1" 2>&1 &
  PID=$!
  for _ in $(seq 1 600); do
    PORT=$(grep -oE 'on http://[^:]+:[0-9]+' "$1" | grep -oE '[0-9]+$' || true)
    [ -n "$PORT" ] && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$1" >&2; exit 1; }
    sleep 0.5
  done
  echo "server did not start: $1" >&2; exit 1
}
stop_server() { kill "$PID"; wait "$PID" || true; PID=""; }
tier_metrics() {
  python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$PORT/metrics').read().decode())" |
    grep -E '^tandem:(kv_tier_hit_tokens_total|pd_prompt_tokens_computed_total)' || true
}
measure() { python3 bench/kv_tiers_ttft.py --port "$PORT" --repeats "$REPEATS" \
  --prefix-len "$PREFIX" --suffix-len "$SUFFIX" --suffix-seed "$1"; }

start_server "$WORK/off.log"; OFF=$(measure 0); stop_server
start_server "$WORK/tiers.log" tiers; COLD=$(measure 1); CPU=$(measure 2)
METRICS_CPU=$(tier_metrics)
stop_server
start_server "$WORK/tiers2.log" tiers; DISK=$(measure 3)
METRICS_DISK=$(tier_metrics)
stop_server

HOST="$(hostname)"
DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
[ -n "$OUT" ] || OUT="bench/results/kv-tiers-ttft-$HOST-$(date -u +%Y%m%d).json"
mkdir -p "$(dirname "$OUT")"
python3 - "$OUT" <<PY
import json, os, platform, statistics, subprocess, sys
def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()
runs = {"off": json.loads('''$OFF''')["ttft_s"], "cold": json.loads('''$COLD''')["ttft_s"],
        "cpu": json.loads('''$CPU''')["ttft_s"], "disk": json.loads('''$DISK''')["ttft_s"]}
med = {k: statistics.median(v) for k, v in runs.items()}
result = {
    "benchmark": "kv_tiers_ttft", "date": "$DATE", "host": "$HOST", "cpu": cpu_model(),
    "cpu_count": os.cpu_count(), "threads": $THREADS, "machine": platform.machine(),
    "model": {"shape": "llama-3.2-1b", "num_hidden_layers": $LAYERS, "dtype": "bf16 (f32 math)"},
    "prompt": {"prefix_tokens": $PREFIX, "new_tokens": $SUFFIX, "chunk_size": $CHUNK,
               "reused_share": $PREFIX / ($PREFIX + $SUFFIX)},
    "ttft_s": runs, "median_ttft_s": med,
    "speedup_vs_off": {k: med["off"] / med[k] for k in ("cold", "cpu", "disk")},
    "metrics_after_cpu_runs": """$METRICS_CPU""".strip().splitlines(),
    "metrics_after_disk_runs": """$METRICS_DISK""".strip().splitlines(),
}
json.dump(result, open(sys.argv[1], "w"), indent=2)
print(json.dumps(result, indent=2))
PY
