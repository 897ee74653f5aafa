// KvConnectorConfig: what the KV connector needs, resolved at start-up from the two
// configurations vLLM + LMCache use: --kv-transfer-config (role, kv_connector_extra_config) and
// the LMCache YAML (pd_role, peers, proxy, buffer, chunk size, timeout). make_kv_connector_config
// checks that they agree (kv_producer <-> pd_role sender, kv_consumer <-> receiver) and names the
// file, key and value when they do not.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/kv_transfer_config.h"
#include "config/lmcache_config.h"
#include "transfer/chunk_hash.h"

namespace tandem {

// A receiver's UCX listeners (or a sender's default receiver).
struct ReceiverAddress {
  std::string host;
  int init_port = 0;
  int alloc_port = 0;
  bool operator==(const ReceiverAddress&) const = default;
};

struct KvConnectorConfig {
  PdRole role = PdRole::kSender;
  int chunk_size = 256;                                  // tokens per chunk
  PartialChunk partial_chunks = PartialChunk::kInclude;  // discard_partial_chunks: kDiscard
  int skip_last_n_tokens = 1;  // receiver: prompt tokens always computed locally (>= 1 used)
  // pd_buffer_size: the receiver's transfer buffer; the sender's budget for gathered KV
  // waiting to be sent.
  uint64_t buffer_bytes = 0;
  // pd_buffer_device: where the receiver's transfer buffer lives. kCuda on a --device cuda engine:
  // GPU memory shared with the prefiller by CUDA IPC (one node); the serve command falls back to
  // host memory on a CPU engine.
  PdBufferDevice buffer_device = PdBufferDevice::kCpu;
  std::chrono::milliseconds transfer_timeout{30000};  // pd_transfer_timeout_sec
  std::chrono::milliseconds heartbeat_interval{1000};  // pd_heartbeat_interval_sec
  std::chrono::milliseconds heartbeat_timeout{15000};  // pd_heartbeat_timeout_sec (>= 2 x interval)
  std::optional<ReceiverAddress> peer;    // receiver: where it listens; sender: default receiver
  std::optional<std::string> proxy_host;  // sender: where notifications go
  int proxy_port = 0;
  std::string peer_id;  // how this instance names itself in Hello messages
  // Receiver: the hosts whose senders it accepts (pd_allowed_peer_hosts, else loopback and the
  // hosts the LMCache config names); "*" allows any; empty: loopback and `peer->host`.
  std::vector<std::string> allowed_peer_hosts;
};

// The connector config. `kv` is the --kv-transfer-config, `lmcache` the LMCache config (from
// --kv-config / LMCACHE_CONFIG_FILE / LMCACHE_* variables). kv_producer needs enable_pd with
// pd_role sender, kv_consumer pd_role receiver; kv_both follows pd_role, and without enable_pd
// gives nullopt (no disaggregated prefill). Throws tandem::Error naming the source, key and value for
// a mismatch or an invalid value.
std::optional<KvConnectorConfig> make_kv_connector_config(const KvTransferConfig& kv,
                                                          const LmCacheConfig& lmcache,
                                                          std::string peer_id);

}  // namespace tandem
