#!/usr/bin/env bash
# Starts one role of the 1p1d disaggregated-prefill example — the equivalent of LMCache's
# disagg_vllm_launcher.sh with `vllm serve` replaced by `tandem serve` and the Python proxy by
# `tandem proxy`. Usage: disagg_tandem_launcher.sh <prefiller | decoder | proxy> [MODEL]
# The role runs in the foreground (exec), so its PID is the server's.
# Environment: MODEL (default: the shared stories260K), TANDEM_BIN, TANDEM_DEVICE (cpu | cuda;
# cpu uses the *-cpu.yaml configs), and the ports PREFILLER_PORT (7100), DECODER_PORT (7200),
# DECODER_INIT_PORT (7300), DECODER_ALLOC_PORT (7400), PROXY_PORT (9100), PROXY_NOTIFY_PORT (7500).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/../../.." && pwd)"

if [[ $# -lt 1 ]]; then
    echo "Usage: $0 <prefiller | decoder | proxy> [model]" >&2
    exit 1
fi
ROLE=$1

# tandem: $TANDEM_BIN, else on PATH, else the repository's build folder.
find_tandem() {
    if [[ -n "${TANDEM_BIN:-}" ]]; then
        [[ -x "$TANDEM_BIN" ]] || { echo "TANDEM_BIN=$TANDEM_BIN is not an executable" >&2; exit 1; }
        echo "$TANDEM_BIN"
    elif command -v tandem >/dev/null 2>&1; then
        command -v tandem
    elif [[ -x "$REPO_DIR/build/tandem" ]]; then
        echo "$REPO_DIR/build/tandem"
    else
        echo "tandem not found: set TANDEM_BIN, put tandem on PATH, or build it (scripts/build.sh)" >&2
        exit 1
    fi
}
TANDEM=$(find_tandem)

# The default model: the shared stories260K, as a clean absolute path (it is also the model's
# name in requests).
default_model() {
    local dir="${TANDEM_SHARED:-$REPO_DIR/../shared}/golden/models/stories260K"
    if [[ -d $dir ]]; then (cd "$dir" && pwd -P); else echo "$dir"; fi
}
MODEL="${2:-${MODEL:-$(default_model)}}"
DEVICE="${TANDEM_DEVICE:-cpu}"
PREFILLER_PORT="${PREFILLER_PORT:-7100}"
DECODER_PORT="${DECODER_PORT:-7200}"
DECODER_INIT_PORT="${DECODER_INIT_PORT:-7300}"
DECODER_ALLOC_PORT="${DECODER_ALLOC_PORT:-7400}"
PROXY_PORT="${PROXY_PORT:-9100}"
PROXY_NOTIFY_PORT="${PROXY_NOTIFY_PORT:-7500}"

case "$DEVICE" in
    cpu) CONFIG_SUFFIX="-cpu" ;;
    cuda) CONFIG_SUFFIX="" ;;
    *) echo "TANDEM_DEVICE=$DEVICE: expected cpu or cuda" >&2; exit 1 ;;
esac

# A restarted role may listen again on UCX ports whose old connections linger in TIME_WAIT.
export UCX_CM_REUSEADDR="${UCX_CM_REUSEADDR:-y}"

# The YAML files name the reference ports; LMCACHE_<KEY> overrides follow the port variables.
export LMCACHE_PD_PEER_INIT_PORT="$DECODER_INIT_PORT"
export LMCACHE_PD_PEER_ALLOC_PORT="$DECODER_ALLOC_PORT"
export LMCACHE_PD_PROXY_PORT="$PROXY_NOTIFY_PORT"

if [[ $ROLE == "prefiller" ]]; then
    echo "Starting the prefiller on port $PREFILLER_PORT with model $MODEL"
    LMCACHE_CONFIG_FILE="$SCRIPT_DIR/configs/lmcache-prefiller-config$CONFIG_SUFFIX.yaml" \
        exec "$TANDEM" serve "$MODEL" \
        --port "$PREFILLER_PORT" \
        --device "$DEVICE" \
        --disable-log-requests \
        --enforce-eager \
        --no-enable-prefix-caching \
        --kv-transfer-config \
        '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_producer","kv_connector_extra_config": {"discard_partial_chunks": false, "lmcache_rpc_port": "producer1"}}'

elif [[ $ROLE == "decoder" ]]; then
    echo "Starting the decoder on port $DECODER_PORT with model $MODEL"
    LMCACHE_CONFIG_FILE="$SCRIPT_DIR/configs/lmcache-decoder-config$CONFIG_SUFFIX.yaml" \
        exec "$TANDEM" serve "$MODEL" \
        --port "$DECODER_PORT" \
        --device "$DEVICE" \
        --disable-log-requests \
        --enforce-eager \
        --no-enable-prefix-caching \
        --kv-transfer-config \
        '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_consumer","kv_connector_extra_config": {"discard_partial_chunks": false, "lmcache_rpc_port": "consumer1", "skip_last_n_tokens": 1}}'

elif [[ $ROLE == "proxy" ]]; then
    echo "Starting the proxy on port $PROXY_PORT"
    exec "$TANDEM" proxy \
        --host localhost \
        --port "$PROXY_PORT" \
        --prefiller-host localhost \
        --prefiller-port "$PREFILLER_PORT" \
        --num-prefillers 1 \
        --decoder-host localhost \
        --decoder-port "$DECODER_PORT" \
        --decoder-init-port "$DECODER_INIT_PORT" \
        --decoder-alloc-port "$DECODER_ALLOC_PORT" \
        --proxy-host localhost \
        --proxy-port "$PROXY_NOTIFY_PORT" \
        --num-decoders 1 \
        ${PROXY_EXTRA_ARGS:-}

else
    echo "Invalid role: $ROLE (expected prefiller, decoder or proxy)" >&2
    exit 1
fi
