// ProxyConfig: what `tandem proxy` serves and where its upstreams are, built from the reference
// proxy's arguments (LMCache's disagg_proxy_server.py): host and port lists are paired the way it
// pairs them (one host and one port with --num-* N: N consecutive ports; one host or one port:
// broadcast; two lists: one-to-one), and every inconsistency is an error naming the flags.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tandem {

// An engine's HTTP endpoint.
struct HttpEndpoint {
  std::string host;
  uint16_t port = 0;
  bool operator==(const HttpEndpoint&) const = default;
};

// A decoder: its HTTP endpoint and the UCX ports of its KV receiver (init and alloc), which the
// prefiller is told to push to (disagg_spec.receiver_*).
struct DecoderEndpoint {
  HttpEndpoint http;
  uint16_t init_port = 0;
  uint16_t alloc_port = 0;
  bool operator==(const DecoderEndpoint&) const = default;
};

enum class RoutingPolicy { kRoundRobin, kLeastLoaded };

// The command line as given (lists still raw); `num_*` are unset unless the flag was given.
struct ProxyArgs {
  std::string host = "0.0.0.0";
  int port = 9100;
  std::vector<std::string> prefiller_hosts = {"localhost"};
  std::vector<int> prefiller_ports = {7100};
  std::optional<int> num_prefillers;
  std::vector<std::string> decoder_hosts = {"localhost"};
  std::vector<int> decoder_ports = {7200};
  std::vector<int> decoder_init_ports = {7300};
  std::vector<int> decoder_alloc_ports = {7400};
  std::optional<int> num_decoders;
  std::string proxy_host = "localhost";
  int proxy_port = 7500;
  std::string routing = "round-robin";
  double prefill_timeout_s = 300;
  double transfer_timeout_s = 30;
  double decode_timeout_s = 300;
  std::optional<std::string> api_key;         // required from clients, and sent to the engines
  std::optional<std::string> engine_api_key;  // sent to the engines instead of api_key
  int threads = 4;
  double stats_interval_s = 5;
  double health_check_interval_s = 2;  // 0: no health probes
  double health_check_timeout_s = 5;
};

struct ProxyConfig {
  std::string host;   // the client-facing HTTP listener
  uint16_t port = 0;  // 0: any free port
  std::vector<HttpEndpoint> prefillers;
  std::vector<DecoderEndpoint> decoders;
  std::string notify_host;   // the UCX listener prefillers send TransferDone/Abort to
  uint16_t notify_port = 0;  // 0: any free port
  RoutingPolicy routing = RoutingPolicy::kRoundRobin;
  std::chrono::milliseconds prefill_timeout{300'000};   // the whole prefill HTTP call
  std::chrono::milliseconds transfer_timeout{30'000};   // TransferDone after the prefill answered
  std::chrono::milliseconds decode_timeout{300'000};    // decoder silence (headers, next chunk)
  std::chrono::milliseconds connect_timeout{5'000};     // TCP connect to an engine
  std::chrono::milliseconds backend_retry{2'000};       // a backend that refused rests this long
  // GET /health to every engine this often (0: never); an engine that fails to answer 200 within
  // health_timeout gets no new requests until a probe succeeds (a dead or hung engine).
  std::chrono::milliseconds health_interval{2'000};
  std::chrono::milliseconds health_timeout{5'000};
  std::optional<std::string> api_key;  // sent upstream as "Authorization: Bearer KEY"
  // Clients must send "Authorization: Bearer KEY" (all but /health); unset: anyone may call.
  std::optional<std::string> client_api_key;
  int threads = 4;                     // I/O threads
  std::chrono::milliseconds stats_interval{5'000};
  size_t max_body_bytes = 32u << 20;   // client request bodies and buffered upstream answers
};

// Validates and pairs the arguments; throws tandem::Error naming the flag and value.
ProxyConfig build_proxy_config(const ProxyArgs& args);

// "a,b, c" -> {"a", "b", "c"}; throws tandem::Error naming `flag` for an empty item.
std::vector<std::string> split_csv(const std::string& text, const std::string& flag);
// "7100,7101" -> {7100, 7101}; each a port 1..65535 (0 allowed when allow_zero).
std::vector<int> parse_port_list(const std::string& text, const std::string& flag,
                                 bool allow_zero = false);

const char* routing_policy_name(RoutingPolicy policy);

}  // namespace tandem
