// PeerAllowlist: host names resolved with getaddrinfo; addresses compared as inet_ntop text.
#include "transfer/peer_allowlist.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netdb.h>

#include <memory>

#include "core/error.h"

namespace tandem {
namespace {

std::string address_text(const sockaddr* sa) {
  char text[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text, sizeof text);
  }
  return text;
}

// An IPv4 peer of a dual-stack listener shows as "::ffff:a.b.c.d".
std::string unmapped(const std::string& address) {
  constexpr std::string_view kMapped = "::ffff:";
  if (address.starts_with(kMapped) && address.find('.') != std::string::npos) {
    return address.substr(kMapped.size());
  }
  return address;
}

std::vector<std::string> resolve(const std::string& host, const std::string& what) {
  in6_addr literal;  // an address needs no resolver (and "::1" none with IPv6 configured)
  if (inet_pton(AF_INET, host.c_str(), &literal) == 1) return {host};
  if (inet_pton(AF_INET6, host.c_str(), &literal) == 1) {
    char text[INET6_ADDRSTRLEN] = "";
    inet_ntop(AF_INET6, &literal, text, sizeof text);
    return {unmapped(text)};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  TANDEM_CHECK(rc == 0 && found, "{}: host '{}' does not resolve: {}", what, host,
               gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, freeaddrinfo);
  std::vector<std::string> addresses;
  for (const addrinfo* a = found; a; a = a->ai_next) {
    std::string text = address_text(a->ai_addr);
    if (!text.empty()) addresses.push_back(unmapped(text));
  }
  return addresses;
}

}  // namespace

PeerAllowlist::PeerAllowlist(const std::vector<std::string>& hosts, std::string what) {
  TANDEM_CHECK(!hosts.empty(), "{}: the list of allowed hosts is empty", what);
  any_ = false;
  for (const std::string& host : hosts) {
    if (host == "*") {
      any_ = true;
      continue;
    }
    for (std::string& address : resolve(host, what)) addresses_.insert(std::move(address));
  }
  description_ = fmt::format("{} ({})", what, fmt::join(hosts, ", "));
  constexpr size_t kMaxDescription = 1024;  // it travels in HelloAck messages
  if (description_.size() > kMaxDescription) {
    description_ = description_.substr(0, kMaxDescription) + "...";
  }
}

bool PeerAllowlist::allows(const std::string& address) const {
  return any_ || addresses_.count(unmapped(address)) > 0;
}

std::vector<std::string> default_allowed_peer_hosts(const std::vector<std::string>& named_hosts) {
  std::vector<std::string> hosts = {"127.0.0.1", "::1"};
  for (const std::string& host : named_hosts) {
    if (!host.empty() && host != "0.0.0.0" && host != "::") hosts.push_back(host);
  }
  return hosts;
}

}  // namespace tandem
