// Resolving and cross-checking the connector's configuration.
#include "transfer/kv_connector_config.h"

#include <cmath>

#include "core/error.h"
#include "core/logging.h"
#include "transfer/peer_allowlist.h"

namespace tandem {
namespace {

using nlohmann::json;

// kv_connector_extra_config's keys Tandem reads; others are LMCache's and ignored.
PartialChunk read_partial_chunks(const json& extra) {
  auto it = extra.find("discard_partial_chunks");
  if (it == extra.end() || it->is_null()) return PartialChunk::kInclude;
  TANDEM_CHECK(it->is_boolean(),
               "--kv-transfer-config: 'kv_connector_extra_config.discard_partial_chunks' must be "
               "true or false, got {}",
               it->dump());
  return it->get<bool>() ? PartialChunk::kDiscard : PartialChunk::kInclude;
}

int read_skip_last_n_tokens(const json& extra, KvRole role) {
  auto it = extra.find("skip_last_n_tokens");
  if (it == extra.end() || it->is_null()) return role == KvRole::kConsumer ? 1 : 0;
  TANDEM_CHECK(it->is_number_integer() && it->get<int64_t>() >= 0 && it->get<int64_t>() <= 1 << 20,
               "--kv-transfer-config: 'kv_connector_extra_config.skip_last_n_tokens' must be an "
               "integer in [0, 1048576], got {}",
               it->dump());
  return int(it->get<int64_t>());
}

PdRole checked_role(const KvTransferConfig& kv, const LmCacheConfig& c) {
  if (kv.kv_role == KvRole::kBoth) return *c.pd_role;  // enable_pd checked by the caller
  const char* wanted = kv.kv_role == KvRole::kProducer ? "sender" : "receiver";
  TANDEM_CHECK(c.enable_pd,
               "--kv-transfer-config: 'kv_role' '{}' needs an LMCache config with enable_pd: true "
               "and pd_role: {} (set LMCACHE_CONFIG_FILE or --kv-config); {} has enable_pd: false",
               kv_role_name(kv.kv_role), wanted, c.source);
  PdRole role = *c.pd_role;  // validated: enable_pd requires pd_role
  TANDEM_CHECK(std::string_view(pd_role_name(role)) == wanted,
               "{}: 'pd_role' is '{}' but --kv-transfer-config 'kv_role' is '{}', which needs "
               "pd_role '{}'",
               c.source, pd_role_name(role), kv_role_name(kv.kv_role), wanted);
  return role;
}

std::optional<ReceiverAddress> peer_address(const LmCacheConfig& c) {
  if (!c.pd_peer_host || c.pd_peer_init_port.empty() || c.pd_peer_alloc_port.empty()) {
    return std::nullopt;
  }
  return ReceiverAddress{*c.pd_peer_host, c.pd_peer_init_port[0], c.pd_peer_alloc_port[0]};
}

}  // namespace

std::optional<KvConnectorConfig> make_kv_connector_config(const KvTransferConfig& kv,
                                                          const LmCacheConfig& c,
                                                          std::string peer_id) {
  if (kv.kv_role == KvRole::kBoth && !c.enable_pd) return std::nullopt;
  KvConnectorConfig out;
  out.role = checked_role(kv, c);
  const json& extra = kv.kv_connector_extra_config;
  out.partial_chunks = read_partial_chunks(extra);
  out.skip_last_n_tokens = read_skip_last_n_tokens(extra, kv.kv_role);
  TANDEM_CHECK(c.chunk_size >= 1, "{}: 'chunk_size' must be at least 1, got {}", c.source,
               c.chunk_size);
  out.chunk_size = c.chunk_size;
  TANDEM_CHECK(*c.pd_buffer_size > 0, "{}: 'pd_buffer_size' must be positive, got {}", c.source,
               *c.pd_buffer_size);
  out.buffer_bytes = uint64_t(*c.pd_buffer_size);
  TANDEM_CHECK(std::isfinite(c.pd_transfer_timeout_sec) && c.pd_transfer_timeout_sec > 0 &&
                   c.pd_transfer_timeout_sec <= 86400,
               "{}: 'pd_transfer_timeout_sec' must be in (0, 86400], got {}", c.source,
               c.pd_transfer_timeout_sec);
  out.transfer_timeout =
      std::chrono::milliseconds(int64_t(std::llround(c.pd_transfer_timeout_sec * 1000)));
  TANDEM_CHECK(std::isfinite(c.pd_heartbeat_interval_sec) && std::isfinite(c.pd_heartbeat_timeout_sec) &&
                   c.pd_heartbeat_interval_sec >= 0.01 &&
                   c.pd_heartbeat_timeout_sec >= 2 * c.pd_heartbeat_interval_sec &&
                   c.pd_heartbeat_timeout_sec <= 86400,
               "{}: 'pd_heartbeat_timeout_sec' ({}) must be at least twice "
               "'pd_heartbeat_interval_sec' ({}, at least 0.01) and at most 86400",
               c.source, c.pd_heartbeat_timeout_sec, c.pd_heartbeat_interval_sec);
  out.heartbeat_interval =
      std::chrono::milliseconds(int64_t(std::llround(c.pd_heartbeat_interval_sec * 1000)));
  out.heartbeat_timeout =
      std::chrono::milliseconds(int64_t(std::llround(c.pd_heartbeat_timeout_sec * 1000)));
  out.buffer_device = c.pd_buffer_device.value_or(PdBufferDevice::kCpu);
  out.peer = peer_address(c);
  if (out.role == PdRole::kSender) {
    out.proxy_host = c.pd_proxy_host;
    out.proxy_port = c.pd_proxy_port.value_or(0);
  }
  out.peer_id = std::move(peer_id);
  out.allowed_peer_hosts = c.pd_allowed_peer_hosts;
  if (out.allowed_peer_hosts.empty()) {
    std::vector<std::string> named;
    if (c.pd_peer_host) named.push_back(*c.pd_peer_host);
    if (c.pd_proxy_host) named.push_back(*c.pd_proxy_host);
    out.allowed_peer_hosts = default_allowed_peer_hosts(named);
  }
  return out;
}

}  // namespace tandem
