// KvTransferConfig: vLLM's `--kv-transfer-config` JSON, parsed and validated at startup.
// Tandem speaks LMCache's connector (LMCacheConnectorV1); the role says whether this instance
// produces KV (prefill), consumes it (decode) or both. Later issues wire it to the transfer layer.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tandem {

enum class KvRole { kProducer, kConsumer, kBoth };

// "kv_producer", "kv_consumer", "kv_both".
const char* kv_role_name(KvRole role);

struct KvTransferConfig {
  std::string kv_connector;  // always "LMCacheConnectorV1" once parsed
  KvRole kv_role = KvRole::kBoth;
  std::optional<int> kv_rank;  // this instance's rank among kv_parallel_size (P2P connectors)
  int kv_parallel_size = 1;
  std::string kv_ip = "127.0.0.1";
  int kv_port = 14579;
  std::string kv_buffer_device = "cuda";
  double kv_buffer_size = 1e9;
  std::optional<std::string> engine_id;
  nlohmann::json kv_connector_extra_config = nlohmann::json::object();  // always an object

  [[nodiscard]] bool is_producer() const { return kv_role != KvRole::kConsumer; }
  [[nodiscard]] bool is_consumer() const { return kv_role != KvRole::kProducer; }
};

// The only connector Tandem implements.
inline constexpr std::string_view kLmCacheConnectorV1 = "LMCacheConnectorV1";

// Parses the flag's JSON text; throws tandem::Error naming the key and the bad value
// (malformed JSON, a missing/unknown connector, a bad role, a wrongly typed or unknown key).
KvTransferConfig parse_kv_transfer_config(std::string_view json_text);

}  // namespace tandem
