// HttpUrl: the parts of an "http://host[:port]/path" URL the benchmark client connects to
// (--base-url + --endpoint, or --host/--port). https is refused with a clear error.
#pragma once
#include <string>
#include <string_view>

namespace tandem::bench {

struct HttpUrl {
  std::string host;    // name or address; IPv6 without brackets
  std::string port;    // "80" when the URL has none
  std::string target;  // path and query, "/" when empty

  // The Host header value ("host:port", IPv6 in brackets).
  [[nodiscard]] std::string host_header() const;
  [[nodiscard]] std::string str() const;  // "http://host:port/target"
};

// Throws tandem::Error naming `url` when it is not an http:// URL with a host.
HttpUrl parse_http_url(std::string_view url);

}  // namespace tandem::bench
