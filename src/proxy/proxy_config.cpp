// build_proxy_config: pairs the host and port lists of the reference proxy's arguments and checks
// every value, so a bad command line stops `tandem proxy` with one message naming the flag.
#include "proxy/proxy_config.h"

#include <cmath>
#include <set>

#include "core/error.h"

namespace tandem {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

uint16_t checked_port(int port, const std::string& flag, bool allow_zero) {
  TANDEM_CHECK(port >= (allow_zero ? 0 : 1) && port <= 65535,
               "{}: port {} is out of range ({}..65535)", flag, port, allow_zero ? 0 : 1);
  return uint16_t(port);
}

std::chrono::milliseconds checked_seconds(double seconds, const std::string& flag) {
  TANDEM_CHECK(std::isfinite(seconds) && seconds > 0 && seconds <= 86400,
               "{}: {} is not a timeout in seconds (0 < T <= 86400)", flag, seconds);
  return std::chrono::milliseconds(int64_t(std::llround(seconds * 1000.0)));
}

// (host, port) pairs the way LMCache's disagg_proxy_server.py pairs them; `count` is --num-*.
std::vector<HttpEndpoint> pair_endpoints(const std::vector<std::string>& hosts,
                                         const std::vector<int>& ports, std::optional<int> count,
                                         const std::string& what) {
  const std::string host_flag = "--" + what + "-host", port_flag = "--" + what + "-port";
  const std::string num_flag = "--num-" + what + "s";
  TANDEM_CHECK(!hosts.empty(), "{}: no host given", host_flag);
  TANDEM_CHECK(!ports.empty(), "{}: no port given", port_flag);
  if (count) TANDEM_CHECK(*count >= 1 && *count <= 1024, "{}: {} is not 1..1024", num_flag, *count);
  std::vector<HttpEndpoint> out;
  if (hosts.size() == 1 && ports.size() == 1) {
    int n = count.value_or(1);
    checked_port(ports[0], port_flag, false);
    TANDEM_CHECK(ports[0] + n - 1 <= 65535, "{} {} with {} {}: the ports run past 65535",
                 port_flag, ports[0], num_flag, n);
    for (int i = 0; i < n; ++i) out.push_back({hosts[0], checked_port(ports[0] + i, port_flag, false)});
    return out;
  }
  if (hosts.size() == 1) {
    for (int p : ports) out.push_back({hosts[0], checked_port(p, port_flag, false)});
  } else if (ports.size() == 1) {
    for (const auto& h : hosts) out.push_back({h, checked_port(ports[0], port_flag, false)});
  } else {
    TANDEM_CHECK(hosts.size() == ports.size(),
                 "{} lists {} hosts but {} lists {} ports; give one of each, or lists of the "
                 "same length", host_flag, hosts.size(), port_flag, ports.size());
    for (size_t i = 0; i < hosts.size(); ++i) {
      out.push_back({hosts[i], checked_port(ports[i], port_flag, false)});
    }
  }
  TANDEM_CHECK(!count || size_t(*count) == out.size(),
               "{} {} does not match the {} {}s that {} and {} name", num_flag, *count,
               out.size(), what, host_flag, port_flag);
  return out;
}

// The receiver port of each decoder: one per decoder, or one for all (consecutive when the
// decoders share a host, as the reference's incremental mode).
std::vector<uint16_t> receiver_ports(const std::vector<int>& ports,
                                     const std::vector<HttpEndpoint>& decoders,
                                     const std::string& flag) {
  TANDEM_CHECK(!ports.empty(), "{}: no port given", flag);
  std::vector<uint16_t> out;
  if (ports.size() == decoders.size()) {
    for (int p : ports) out.push_back(checked_port(p, flag, false));
    return out;
  }
  TANDEM_CHECK(ports.size() == 1, "{} lists {} ports for {} decoders; give one, or one per decoder",
               flag, ports.size(), decoders.size());
  std::set<std::string> hosts;
  for (const auto& d : decoders) hosts.insert(d.host);
  bool consecutive = hosts.size() == 1;
  for (size_t i = 0; i < decoders.size(); ++i) {
    out.push_back(checked_port(ports[0] + (consecutive ? int(i) : 0), flag, false));
  }
  return out;
}

}  // namespace

std::vector<std::string> split_csv(const std::string& text, const std::string& flag) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string item = trim(text.substr(start, comma == std::string::npos ? comma : comma - start));
    TANDEM_CHECK(!item.empty(), "{}: '{}' has an empty item", flag, text);
    out.push_back(item);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

std::vector<int> parse_port_list(const std::string& text, const std::string& flag,
                                 bool allow_zero) {
  std::vector<int> out;
  for (const std::string& item : split_csv(text, flag)) {
    size_t used = 0;
    int port = -1;
    try {
      port = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    TANDEM_CHECK(used == item.size() && used > 0, "{}: '{}' is not a port number", flag, item);
    out.push_back(checked_port(port, flag, allow_zero));
  }
  return out;
}

const char* routing_policy_name(RoutingPolicy policy) {
  return policy == RoutingPolicy::kRoundRobin ? "round-robin" : "least-loaded";
}

ProxyConfig build_proxy_config(const ProxyArgs& a) {
  ProxyConfig c;
  TANDEM_CHECK(!a.host.empty(), "--host: empty");
  c.host = a.host;
  c.port = checked_port(a.port, "--port", /*allow_zero=*/true);
  c.prefillers = pair_endpoints(a.prefiller_hosts, a.prefiller_ports, a.num_prefillers, "prefiller");
  std::vector<HttpEndpoint> decoders =
      pair_endpoints(a.decoder_hosts, a.decoder_ports, a.num_decoders, "decoder");
  std::vector<uint16_t> init = receiver_ports(a.decoder_init_ports, decoders, "--decoder-init-port");
  std::vector<uint16_t> alloc =
      receiver_ports(a.decoder_alloc_ports, decoders, "--decoder-alloc-port");
  for (size_t i = 0; i < decoders.size(); ++i) c.decoders.push_back({decoders[i], init[i], alloc[i]});
  TANDEM_CHECK(!a.proxy_host.empty(), "--proxy-host: empty");
  c.notify_host = a.proxy_host;
  c.notify_port = checked_port(a.proxy_port, "--proxy-port", /*allow_zero=*/true);
  if (a.routing == "round-robin") {
    c.routing = RoutingPolicy::kRoundRobin;
  } else if (a.routing == "least-loaded") {
    c.routing = RoutingPolicy::kLeastLoaded;
  } else {
    fail("--routing: '{}' is not round-robin or least-loaded", a.routing);
  }
  c.prefill_timeout = checked_seconds(a.prefill_timeout_s, "--prefill-timeout");
  c.transfer_timeout = checked_seconds(a.transfer_timeout_s, "--transfer-timeout");
  c.decode_timeout = checked_seconds(a.decode_timeout_s, "--decode-timeout");
  c.stats_interval = checked_seconds(a.stats_interval_s, "--stats-interval");
  c.health_interval = a.health_check_interval_s == 0
                          ? std::chrono::milliseconds(0)
                          : checked_seconds(a.health_check_interval_s, "--health-check-interval");
  c.health_timeout = checked_seconds(a.health_check_timeout_s, "--health-check-timeout");
  TANDEM_CHECK(!a.api_key || !a.api_key->empty(), "--api-key: empty");
  TANDEM_CHECK(!a.engine_api_key || !a.engine_api_key->empty(), "--engine-api-key: empty");
  c.client_api_key = a.api_key;
  c.api_key = a.engine_api_key ? a.engine_api_key : a.api_key;
  TANDEM_CHECK(a.threads >= 1 && a.threads <= 256, "--threads: {} is not 1..256", a.threads);
  c.threads = a.threads;
  return c;
}

}  // namespace tandem
