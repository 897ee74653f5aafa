// PeerAllowlist: which hosts may connect to a transfer port (the decoder's init/alloc ports, the
// proxy's notification port). Hosts are names or addresses, resolved once at start-up to the
// set of IP addresses a connection from them can come from; "*" allows every peer. Connections
// from anywhere else are refused without decoding anything they send.
#pragma once
#include <set>
#include <string>
#include <vector>

namespace tandem {

class PeerAllowlist {
 public:
  // Every peer.
  PeerAllowlist() = default;
  // `hosts`: names or IP addresses, or "*"; `what` names the setting in errors and logs (e.g.
  // "pd_allowed_peer_hosts"). Throws tandem::Error naming it for a host that does not resolve.
  PeerAllowlist(const std::vector<std::string>& hosts, std::string what);

  // Whether a peer at `address` (as inet_ntop prints it; "::ffff:a.b.c.d" is a.b.c.d) may connect.
  [[nodiscard]] bool allows(const std::string& address) const;
  [[nodiscard]] bool allows_any() const { return any_; }
  // "pd_allowed_peer_hosts (localhost, 10.0.0.2)" for messages.
  [[nodiscard]] const std::string& description() const { return description_; }

 private:
  bool any_ = true;
  std::set<std::string> addresses_;
  std::string description_ = "any peer";
};

// The hosts a receiver accepts senders from when pd_allowed_peer_hosts is not set: loopback and
// the hosts its LMCache config names (its own pd_peer_host, pd_proxy_host when given).
std::vector<std::string> default_allowed_peer_hosts(const std::vector<std::string>& named_hosts);

}  // namespace tandem
