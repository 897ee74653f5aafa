// Loading LmCacheConfig: YAML values and LMCACHE_<KEY> overrides are collected per key (aliases
// resolved, the origin of each value kept for messages), then applied through one typed reader
// per key, then checked across keys with LMCache's rules for the sender and receiver roles.
#include "config/lmcache_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "core/json_file.h"
#include "core/logging.h"

extern char** environ;

namespace tandem {
namespace {

constexpr std::string_view kEnvPrefix = "LMCACHE_";
constexpr int64_t kMaxChunkSize = 1 << 20;  // tokens
constexpr int kMaxPort = 65535;

// LMCACHE_* variables that are not configuration keys.
constexpr std::string_view kNonKeyEnvVars[] = {"LMCACHE_CONFIG_FILE", "LMCACHE_LOG_LEVEL",
                                               "LMCACHE_USE_EXPERIMENTAL", "LMCACHE_TRACK_USAGE"};

// A value as found in the file or the environment, and where it was found.
struct RawValue {
  YAML::Node node;
  std::string origin;       // "LMCache config f.yaml" or "environment variable LMCACHE_X"
  std::string spelled_key;  // the key as written (maybe an alias)
  std::string key;          // the canonical key
};

std::string display(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "null";
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

std::string key_label(const RawValue& v) {
  if (v.spelled_key == v.key) return fmt::format("'{}'", v.key);
  return fmt::format("'{}' (alias of '{}')", v.spelled_key, v.key);
}

[[noreturn]] void bad_value(const RawValue& v, std::string_view expectation) {
  fail("{}: {} must be {}, got '{}'", v.origin, key_label(v), expectation, display(v.node));
}

std::string trimmed(std::string_view s) {
  size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  size_t end = s.find_last_not_of(" \t");
  return std::string(s.substr(begin, end - begin + 1));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::optional<int64_t> parse_int(std::string_view text) {
  std::string s = trimmed(text);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::optional<double> parse_float(std::string_view text) {
  std::string s = trimmed(text);
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

int64_t read_int(const RawValue& v, int64_t lo, int64_t hi) {
  std::optional<int64_t> value = v.node.IsScalar() ? parse_int(v.node.Scalar()) : std::nullopt;
  if (!value || *value < lo || *value > hi) {
    bad_value(v, fmt::format("an integer from {} to {}", lo, hi));
  }
  return *value;
}

double read_float(const RawValue& v, double lo) {
  std::optional<double> value = v.node.IsScalar() ? parse_float(v.node.Scalar()) : std::nullopt;
  if (!value || *value < lo) bad_value(v, fmt::format("a number of at least {}", lo));
  return *value;
}

bool read_bool(const RawValue& v) {
  std::string s = v.node.IsScalar() ? lower(trimmed(v.node.Scalar())) : "";
  if (s == "true" || s == "yes" || s == "on" || s == "1") return true;
  if (s == "false" || s == "no" || s == "off" || s == "0") return false;
  bad_value(v, "a boolean (true or false)");
}

std::string read_string(const RawValue& v) {
  if (!v.node.IsScalar() || trimmed(v.node.Scalar()).empty()) bad_value(v, "a non-empty string");
  return trimmed(v.node.Scalar());
}

std::optional<std::string> read_optional_string(const RawValue& v) {
  if (v.node.IsNull()) return std::nullopt;
  return read_string(v);
}

// A YAML sequence, or one scalar holding a single value or a comma-separated list (LMCache).
std::vector<std::string> list_items(const RawValue& v) {
  std::vector<std::string> items;
  if (v.node.IsSequence()) {
    for (const YAML::Node& item : v.node) {
      if (!item.IsScalar()) bad_value(v, "a list of plain values");
      items.push_back(trimmed(item.Scalar()));
    }
  } else if (v.node.IsScalar()) {
    std::string_view s = v.node.Scalar();
    for (size_t begin = 0; begin <= s.size();) {
      size_t comma = std::min(s.find(',', begin), s.size());
      if (std::string item = trimmed(s.substr(begin, comma - begin)); !item.empty()) {
        items.push_back(item);
      }
      begin = comma + 1;
    }
  }
  if (items.empty()) bad_value(v, "a value or a non-empty list");
  return items;
}

std::vector<int> read_port_list(const RawValue& v) {
  std::vector<int> ports;
  for (const std::string& item : list_items(v)) {
    std::optional<int64_t> port = parse_int(item);
    if (!port || *port < 1 || *port > kMaxPort) {
      bad_value(v, fmt::format("a port from 1 to {} or a list of them", kMaxPort));
    }
    ports.push_back(int(*port));
  }
  return ports;
}

PdRole read_role(const RawValue& v) {
  std::string s = v.node.IsScalar() ? trimmed(v.node.Scalar()) : "";
  if (s == "sender") return PdRole::kSender;
  if (s == "receiver") return PdRole::kReceiver;
  bad_value(v, "'sender' or 'receiver'");
}

PdBufferDevice read_device(const RawValue& v) {
  std::string s = v.node.IsScalar() ? lower(trimmed(v.node.Scalar())) : "";
  if (s == "cpu") return PdBufferDevice::kCpu;
  if (s == "cuda") return PdBufferDevice::kCuda;
  bad_value(v, "'cpu' or 'cuda'");
}

std::vector<std::string> read_backends(const RawValue& v) {
  std::vector<std::string> backends = list_items(v);
  for (std::string& b : backends) {
    if (lower(b) != "ucx") bad_value(v, "[UCX] (Tandem's transfer channel runs over UCX only)");
    b = "UCX";
  }
  return backends;
}

std::optional<std::string> read_local_disk(const RawValue& v) {
  std::optional<std::string> path = read_optional_string(v);
  if (path && path->starts_with("file://")) {
    if (path->size() <= 7 || path->back() != '/') bad_value(v, "'file:///some/dir/' or a path");
    return path->substr(7);
  }
  return path;
}

using ApplyFn = void (*)(const RawValue&, LmCacheConfig&);
struct KeySpec {
  std::string_view key;
  ApplyFn apply;
};

// Every key Tandem reads, in the order values are applied.
const KeySpec kKeys[] = {
    {"chunk_size", [](const RawValue& v,
                      LmCacheConfig& c) { c.chunk_size = int(read_int(v, 1, kMaxChunkSize)); }},
    {"local_cpu", [](const RawValue& v, LmCacheConfig& c) { c.local_cpu = read_bool(v); }},
    {"max_local_cpu_size",
     [](const RawValue& v, LmCacheConfig& c) { c.max_local_cpu_size_gb = read_float(v, 0); }},
    {"local_disk", [](const RawValue& v, LmCacheConfig& c) { c.local_disk = read_local_disk(v); }},
    {"max_local_disk_size",
     [](const RawValue& v, LmCacheConfig& c) { c.max_local_disk_size_gb = read_float(v, 0); }},
    {"save_decode_cache",
     [](const RawValue& v, LmCacheConfig& c) { c.save_decode_cache = read_bool(v); }},
    {"enable_pd", [](const RawValue& v, LmCacheConfig& c) { c.enable_pd = read_bool(v); }},
    {"pd_role",
     [](const RawValue& v, LmCacheConfig& c) {
       c.pd_role = v.node.IsNull() ? std::nullopt : std::optional(read_role(v));
     }},
    {"transfer_channel",
     [](const RawValue& v, LmCacheConfig& c) {
       c.transfer_channel = read_optional_string(v);
       if (c.transfer_channel && *c.transfer_channel != "nixl") bad_value(v, "'nixl'");
     }},
    {"nixl_backends",
     [](const RawValue& v, LmCacheConfig& c) { c.nixl_backends = read_backends(v); }},
    {"pd_buffer_size",
     [](const RawValue& v, LmCacheConfig& c) {
       c.pd_buffer_size =
           v.node.IsNull() ? std::nullopt : std::optional(read_int(v, 1, int64_t(1) << 50));
     }},
    {"pd_buffer_device",
     [](const RawValue& v, LmCacheConfig& c) {
       c.pd_buffer_device = v.node.IsNull() ? std::nullopt : std::optional(read_device(v));
     }},
    {"pd_peer_host",
     [](const RawValue& v, LmCacheConfig& c) { c.pd_peer_host = read_optional_string(v); }},
    {"pd_peer_init_port",
     [](const RawValue& v, LmCacheConfig& c) {
       c.pd_peer_init_port = v.node.IsNull() ? std::vector<int>{} : read_port_list(v);
     }},
    {"pd_peer_alloc_port",
     [](const RawValue& v, LmCacheConfig& c) {
       c.pd_peer_alloc_port = v.node.IsNull() ? std::vector<int>{} : read_port_list(v);
     }},
    {"pd_proxy_host",
     [](const RawValue& v, LmCacheConfig& c) { c.pd_proxy_host = read_optional_string(v); }},
    {"pd_allowed_peer_hosts",
     [](const RawValue& v, LmCacheConfig& c) { c.pd_allowed_peer_hosts = list_items(v); }},
    {"pd_proxy_port",
     [](const RawValue& v, LmCacheConfig& c) {
       c.pd_proxy_port =
           v.node.IsNull() ? std::nullopt : std::optional(int(read_int(v, 1, kMaxPort)));
     }},
    {"pd_transfer_timeout_sec",
     [](const RawValue& v, LmCacheConfig& c) {
       c.pd_transfer_timeout_sec = read_float(v, 0);
       if (c.pd_transfer_timeout_sec <= 0) bad_value(v, "a positive number of seconds");
     }},
    {"pd_heartbeat_interval_sec",
     [](const RawValue& v, LmCacheConfig& c) {
       c.pd_heartbeat_interval_sec = read_float(v, 0);
       if (c.pd_heartbeat_interval_sec <= 0) bad_value(v, "a positive number of seconds");
     }},
    {"pd_heartbeat_timeout_sec",
     [](const RawValue& v, LmCacheConfig& c) {
       c.pd_heartbeat_timeout_sec = read_float(v, 0);
       if (c.pd_heartbeat_timeout_sec <= 0) bad_value(v, "a positive number of seconds");
     }},
};

struct Alias {
  std::string_view alias;
  std::string_view key;
};
const Alias kAliases[] = {
    {"enable_xpyd", "enable_pd"},
    {"nixl_role", "pd_role"},
    {"nixl_peer_host", "pd_peer_host"},
    {"nixl_peer_init_port", "pd_peer_init_port"},
    {"nixl_peer_alloc_port", "pd_peer_alloc_port"},
    {"nixl_proxy_host", "pd_proxy_host"},
    {"nixl_proxy_port", "pd_proxy_port"},
    {"nixl_buffer_size", "pd_buffer_size"},
    {"nixl_buffer_device", "pd_buffer_device"},
};

// The canonical key for a key or alias; nullopt for an unknown key.
std::optional<std::string> canonical_key(std::string_view name) {
  for (const KeySpec& spec : kKeys) {
    if (spec.key == name) return std::string(spec.key);
  }
  for (const Alias& a : kAliases) {
    if (a.alias == name) return std::string(a.key);
  }
  return std::nullopt;
}

// Values by canonical key, plus the warnings met while collecting them.
struct RawValues {
  std::map<std::string, RawValue> values;
  std::vector<std::string> warnings;
};

// Adds one value from `layer` (one file, or the environment); a key and its alias both set in
// the same layer must agree. A later layer replaces an earlier one's value.
void add_value(RawValues& out, std::map<std::string, RawValue>& layer, RawValue value) {
  auto [it, inserted] = layer.try_emplace(value.key, value);
  if (!inserted && display(it->second.node) != display(value.node)) {
    TANDEM_CHECK(it->second.spelled_key != value.spelled_key, "{}: {} is set twice ('{}' and '{}')",
                 value.origin, key_label(value), display(it->second.node), display(value.node));
    fail("{}: {} is '{}' but {} is '{}'; set only one", value.origin, key_label(it->second),
         display(it->second.node), key_label(value), display(value.node));
  }
  out.values[value.key] = std::move(value);
}

void warn(RawValues& out, std::string message) {
  log_warning("{}", message);
  out.warnings.push_back(std::move(message));
}

void collect_file_values(const YAML::Node& root, const std::string& origin, RawValues& out) {
  if (root.IsNull()) return;
  TANDEM_CHECK(root.IsMap(), "{}: the top level must be a mapping of keys to values, got '{}'",
               origin, display(root));
  std::map<std::string, RawValue> layer;
  for (const auto& pair : root) {
    TANDEM_CHECK(pair.first.IsScalar(), "{}: a key must be a plain name, got '{}'", origin,
                 display(pair.first));
    const std::string& name = pair.first.Scalar();
    std::optional<std::string> key = canonical_key(name);
    if (!key) {
      warn(out, fmt::format("{}: unknown key '{}' (ignored)", origin, name));
      continue;
    }
    add_value(out, layer, RawValue{pair.second, origin, name, *key});
  }
}

// An environment value parsed as a YAML scalar (or a YAML list); text YAML cannot parse stays
// a plain string.
YAML::Node env_value_node(const std::string& text) {
  if (trimmed(text).empty()) return YAML::Node(YAML::NodeType::Null);
  try {
    YAML::Node node = YAML::Load(text);
    if (node.IsScalar() || node.IsSequence() || node.IsNull()) return node;
  } catch (const YAML::Exception&) {
  }
  return YAML::Node(text);
}

void collect_env_values(const EnvVars& env, RawValues& out) {
  std::map<std::string, RawValue> layer;
  for (const auto& [name, text] : env) {
    if (!name.starts_with(kEnvPrefix)) continue;
    if (std::ranges::find(kNonKeyEnvVars, name) != std::end(kNonKeyEnvVars)) continue;
    std::string spelled = lower(name.substr(kEnvPrefix.size()));
    std::string origin = fmt::format("environment variable {}", name);
    std::optional<std::string> key = canonical_key(spelled);
    if (!key) {
      warn(out, fmt::format("{}: unknown key '{}' (ignored)", origin, spelled));
      continue;
    }
    add_value(out, layer, RawValue{env_value_node(text), origin, spelled, *key});
  }
}

void require(bool present, const LmCacheConfig& c, std::string_view why, std::string_view key) {
  TANDEM_CHECK(present, "{}: {}, so '{}' is required", c.source, why, key);
}

// LMCache's cross-key rules for disaggregated prefill.
void validate_pd(const LmCacheConfig& c) {
  if (!c.enable_pd) return;
  std::string_view why = "enable_pd is true";
  require(c.pd_role.has_value(), c, why, "pd_role");
  require(c.pd_buffer_size.has_value(), c, why, "pd_buffer_size");
  require(c.pd_buffer_device.has_value(), c, why, "pd_buffer_device");
  require(c.transfer_channel.has_value(), c, why, "transfer_channel");
  if (c.is_receiver()) {
    why = "pd_role is 'receiver'";
    require(c.pd_peer_host.has_value(), c, why, "pd_peer_host");
    require(!c.pd_peer_init_port.empty(), c, why, "pd_peer_init_port");
    require(!c.pd_peer_alloc_port.empty(), c, why, "pd_peer_alloc_port");
    TANDEM_CHECK(!c.save_decode_cache,
                 "{}: 'save_decode_cache' must be false when pd_role is 'receiver', got 'true'",
                 c.source);
  } else {
    why = "pd_role is 'sender'";
    require(c.pd_proxy_host.has_value(), c, why, "pd_proxy_host");
    require(c.pd_proxy_port.has_value(), c, why, "pd_proxy_port");
  }
  if (!c.pd_peer_init_port.empty() && !c.pd_peer_alloc_port.empty()) {
    TANDEM_CHECK(c.pd_peer_init_port.size() == c.pd_peer_alloc_port.size(),
                 "{}: 'pd_peer_init_port' lists {} ports but 'pd_peer_alloc_port' lists {}; "
                 "give one of each per rank",
                 c.source, c.pd_peer_init_port.size(), c.pd_peer_alloc_port.size());
    for (size_t i = 0; i < c.pd_peer_init_port.size(); ++i) {
      TANDEM_CHECK(c.pd_peer_init_port[i] != c.pd_peer_alloc_port[i],
                   "{}: 'pd_peer_init_port' and 'pd_peer_alloc_port' must differ, both are {}",
                   c.source, c.pd_peer_init_port[i]);
    }
  }
}

LmCacheConfig build_config(const RawValues& raw, std::string source) {
  LmCacheConfig config;
  config.source = std::move(source);
  for (const KeySpec& spec : kKeys) {
    if (auto it = raw.values.find(std::string(spec.key)); it != raw.values.end()) {
      spec.apply(it->second, config);
    }
  }
  config.warnings = raw.warnings;
  validate_pd(config);
  return config;
}

YAML::Node parse_yaml(std::string_view text, const std::string& origin) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    fail("{}: not valid YAML: {}", origin, e.what());
  }
}

}  // namespace

const char* pd_role_name(PdRole role) { return role == PdRole::kSender ? "sender" : "receiver"; }

const char* pd_buffer_device_name(PdBufferDevice dev) {
  return dev == PdBufferDevice::kCpu ? "cpu" : "cuda";
}

EnvVars lmcache_env_vars() {
  EnvVars env;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view text(*entry);
    size_t eq = text.find('=');
    if (eq == std::string_view::npos || !text.starts_with(kEnvPrefix)) continue;
    env.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return env;
}

LmCacheConfig parse_lmcache_config(std::string_view yaml_text, std::string_view source_name,
                                   const EnvVars& env) {
  std::string origin = fmt::format("LMCache config {}", source_name);
  RawValues raw;
  collect_file_values(parse_yaml(yaml_text, origin), origin, raw);
  collect_env_values(env, raw);
  return build_config(raw, origin);
}

LmCacheConfig load_lmcache_config(const std::optional<std::filesystem::path>& explicit_file,
                                  const EnvVars& env) {
  std::optional<std::filesystem::path> file = explicit_file;
  if (!file) {
    if (auto it = env.find("LMCACHE_CONFIG_FILE"); it != env.end() && !it->second.empty()) {
      file = it->second;
    }
  }
  if (!file) {
    RawValues raw;
    collect_env_values(env, raw);
    return build_config(raw, "LMCache config (environment variables only)");
  }
  return parse_lmcache_config(read_file(*file), file->string(), env);
}

LmCacheConfig load_lmcache_config(const std::optional<std::filesystem::path>& explicit_file) {
  return load_lmcache_config(explicit_file, lmcache_env_vars());
}

}  // namespace tandem
