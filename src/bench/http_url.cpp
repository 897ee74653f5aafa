// HttpUrl parsing.
#include "bench/http_url.h"

#include <cctype>

#include "core/error.h"

namespace tandem::bench {

std::string HttpUrl::host_header() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + port;
}

std::string HttpUrl::str() const { return "http://" + host_header() + target; }

HttpUrl parse_http_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  TANDEM_CHECK(url.substr(0, 8) != "https://",
               "'{}': https is not supported by the benchmark client (use http://)", url);
  TANDEM_CHECK(url.substr(0, kScheme.size()) == kScheme, "'{}' is not an http:// URL", url);
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  HttpUrl out;
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  out.port = "80";
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    TANDEM_CHECK(close != std::string_view::npos, "'{}': unclosed '[' in the host", url);
    out.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty()) {
      TANDEM_CHECK(authority.front() == ':', "'{}': junk after the host", url);
      out.port = std::string(authority.substr(1));
    }
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
  }
  TANDEM_CHECK(!out.host.empty(), "'{}' has no host", url);
  bool digits = !out.port.empty() && out.port.size() <= 5;
  for (char c : out.port) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  TANDEM_CHECK(digits && std::stoi(out.port) <= 65535, "'{}': '{}' is not a port", url, out.port);
  return out;
}

}  // namespace tandem::bench
