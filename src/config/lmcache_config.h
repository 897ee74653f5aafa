// LmCacheConfig: LMCache's YAML configuration, read from LMCACHE_CONFIG_FILE (or a file named on
// the command line), with every key overridable by an LMCACHE_<KEY> environment variable and the
// legacy aliases (enable_xpyd, nixl_role, nixl_peer_*, nixl_proxy_*, nixl_buffer_*) accepted.
// Tandem reads the keys that matter for disaggregated prefill and the local cache sizes; an
// unknown key is a warning, an invalid value or a missing required key a tandem::Error.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem {

enum class PdRole { kSender, kReceiver };   // prefiller pushes KV, decoder receives it
enum class PdBufferDevice { kCpu, kCuda };  // where the transfer buffer lives

const char* pd_role_name(PdRole role);                  // "sender", "receiver"
const char* pd_buffer_device_name(PdBufferDevice dev);  // "cpu", "cuda"

struct LmCacheConfig {
  int chunk_size = 256;                   // tokens per KV chunk: the unit of hashing and transfer
  bool local_cpu = true;                  // keep a CPU cache of KV chunks
  double max_local_cpu_size_gb = 5.0;     // GB
  std::optional<std::string> local_disk;  // a directory; "file:///p/" is stored as "/p/"
  double max_local_disk_size_gb = 0.0;    // GB
  bool save_decode_cache = false;  // also store KV produced while decoding (not on a receiver)

  bool enable_pd = false;  // disaggregated prefill
  std::optional<PdRole> pd_role;
  std::optional<std::string> transfer_channel;  // "nixl": the name stays, the channel is Tandem's
  std::vector<std::string> nixl_backends = {"UCX"};
  std::optional<int64_t> pd_buffer_size;  // bytes of the transfer buffer
  std::optional<PdBufferDevice> pd_buffer_device;
  std::optional<std::string> pd_peer_host;   // receiver: where it listens; sender: default peer
  std::vector<int> pd_peer_init_port;        // one per tensor-parallel rank; empty when unset
  std::vector<int> pd_peer_alloc_port;       // same length as pd_peer_init_port when both set
  std::optional<std::string> pd_proxy_host;  // sender: where TransferDone notifications go
  std::optional<int> pd_proxy_port;
  double pd_transfer_timeout_sec = 30.0;  // a transfer not finished by then is aborted and freed
  // Tandem's key: the hosts a receiver accepts KV senders from ("*": any). Unset: loopback and
  // the hosts this config names (pd_peer_host, pd_proxy_host).
  std::vector<std::string> pd_allowed_peer_hosts;
  // Tandem's liveness checks on the transfer channel (not LMCache keys): each side sends a
  // Heartbeat this often, and closes a connection whose peer has been silent this long (a hung
  // or dead sender's pages are freed; a hung decoder fails the transfer at once).
  double pd_heartbeat_interval_sec = 1.0;
  // Generous: on a CPU-starved host (the 1p1d soak on 2 shared cores) a live peer was once
  // silent for 5 s; a hung one is still found long before pd_transfer_timeout_sec.
  double pd_heartbeat_timeout_sec = 15.0;

  std::string source;                 // "LMCache config <file>" or "... from the environment"
  std::vector<std::string> warnings;  // unknown keys etc., also logged when loading

  [[nodiscard]] bool is_sender() const { return enable_pd && pd_role == PdRole::kSender; }
  [[nodiscard]] bool is_receiver() const { return enable_pd && pd_role == PdRole::kReceiver; }
};

// Environment variables by name; only the LMCACHE_* ones matter.
using EnvVars = std::map<std::string, std::string>;

// Every LMCACHE_* variable of this process's environment.
EnvVars lmcache_env_vars();

// Parses YAML text (the contents of the file `source_name`), applies the LMCACHE_<KEY> overrides
// in `env`, and validates. Throws tandem::Error naming the file (or variable), key and value.
LmCacheConfig parse_lmcache_config(std::string_view yaml_text, std::string_view source_name,
                                   const EnvVars& env);

// Loads `explicit_file` if given, else the file named by env["LMCACHE_CONFIG_FILE"], else only
// the environment overrides on top of the defaults.
LmCacheConfig load_lmcache_config(const std::optional<std::filesystem::path>& explicit_file,
                                  const EnvVars& env);

// load_lmcache_config with this process's environment.
LmCacheConfig load_lmcache_config(const std::optional<std::filesystem::path>& explicit_file = {});

}  // namespace tandem
