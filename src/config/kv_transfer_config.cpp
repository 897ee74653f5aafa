// Parsing `--kv-transfer-config`: vLLM's KVTransferConfig keys, type-checked one by one, with
// LMCacheConnectorV1 as the only accepted connector and unknown keys rejected by name.
#include "config/kv_transfer_config.h"

#include "core/error.h"

namespace tandem {
namespace {

using nlohmann::json;

const char* json_type_name(const json& v) { return v.type_name(); }

std::string get_string(const json& obj, const char* key) {
  const json& v = obj.at(key);
  TANDEM_CHECK(v.is_string(), "--kv-transfer-config: '{}' must be a string, got {} {}", key,
               json_type_name(v), v.dump());
  return v.get<std::string>();
}

int get_int(const json& obj, const char* key, int min_value) {
  const json& v = obj.at(key);
  TANDEM_CHECK(v.is_number_integer(), "--kv-transfer-config: '{}' must be an integer, got {}",
               key, v.dump());
  int64_t value = v.get<int64_t>();
  TANDEM_CHECK(value >= min_value && value <= INT32_MAX,
               "--kv-transfer-config: '{}' must be at least {}, got {}", key, min_value, value);
  return int(value);
}

KvRole parse_role(const std::string& role) {
  if (role == "kv_producer") return KvRole::kProducer;
  if (role == "kv_consumer") return KvRole::kConsumer;
  if (role == "kv_both") return KvRole::kBoth;
  fail("--kv-transfer-config: 'kv_role' must be one of kv_producer, kv_consumer, kv_both, got "
       "'{}'",
       role);
}

// Applies one key of the JSON object to `config`; false for a key vLLM does not define.
bool apply_key(const json& obj, const std::string& key, KvTransferConfig& config) {
  if (key == "kv_connector") {
    config.kv_connector = get_string(obj, "kv_connector");
  } else if (key == "kv_role") {
    config.kv_role = parse_role(get_string(obj, "kv_role"));
  } else if (key == "kv_rank") {
    config.kv_rank = get_int(obj, "kv_rank", 0);
  } else if (key == "kv_parallel_size") {
    config.kv_parallel_size = get_int(obj, "kv_parallel_size", 1);
  } else if (key == "kv_ip") {
    config.kv_ip = get_string(obj, "kv_ip");
  } else if (key == "kv_port") {
    config.kv_port = get_int(obj, "kv_port", 0);
    TANDEM_CHECK(config.kv_port <= 65535, "--kv-transfer-config: 'kv_port' must be at most "
                 "65535, got {}", config.kv_port);
  } else if (key == "kv_buffer_device") {
    config.kv_buffer_device = get_string(obj, "kv_buffer_device");
  } else if (key == "kv_buffer_size") {
    const json& v = obj.at(key);
    TANDEM_CHECK(v.is_number() && v.get<double>() > 0,
                 "--kv-transfer-config: 'kv_buffer_size' must be a positive number, got {}",
                 v.dump());
    config.kv_buffer_size = v.get<double>();
  } else if (key == "engine_id") {
    config.engine_id = get_string(obj, "engine_id");
  } else if (key == "kv_connector_extra_config") {
    const json& v = obj.at(key);
    TANDEM_CHECK(v.is_object(),
                 "--kv-transfer-config: 'kv_connector_extra_config' must be an object, got {}",
                 v.dump());
    config.kv_connector_extra_config = v;
  } else {
    return false;
  }
  return true;
}

}  // namespace

const char* kv_role_name(KvRole role) {
  switch (role) {
    case KvRole::kProducer: return "kv_producer";
    case KvRole::kConsumer: return "kv_consumer";
    case KvRole::kBoth: return "kv_both";
  }
  return "?";
}

KvTransferConfig parse_kv_transfer_config(std::string_view json_text) {
  json obj = json::parse(json_text, nullptr, /* allow_exceptions = */ false);
  TANDEM_CHECK(!obj.is_discarded(), "--kv-transfer-config: not valid JSON: {}", json_text);
  TANDEM_CHECK(obj.is_object(), "--kv-transfer-config: must be a JSON object, got {}", obj.dump());
  TANDEM_CHECK(obj.contains("kv_connector"), "--kv-transfer-config: 'kv_connector' is required");
  TANDEM_CHECK(obj.contains("kv_role"), "--kv-transfer-config: 'kv_role' is required");
  KvTransferConfig config;
  for (const auto& [key, value] : obj.items()) {
    TANDEM_CHECK(apply_key(obj, key, config), "--kv-transfer-config: unknown key '{}'", key);
  }
  TANDEM_CHECK(config.kv_connector == kLmCacheConnectorV1,
               "--kv-transfer-config: 'kv_connector' must be '{}', got '{}'", kLmCacheConnectorV1,
               config.kv_connector);
  if (config.kv_rank) {
    TANDEM_CHECK(*config.kv_rank < config.kv_parallel_size,
                 "--kv-transfer-config: 'kv_rank' ({}) must be less than 'kv_parallel_size' ({})",
                 *config.kv_rank, config.kv_parallel_size);
  }
  return config;
}

}  // namespace tandem
