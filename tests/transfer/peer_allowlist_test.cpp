// PeerAllowlist: names and addresses resolved at start-up, "*" for anyone, IPv4-mapped IPv6
// peers matched as IPv4, a host that does not resolve an error naming the setting; and the
// default list (loopback plus the hosts the LMCache config names).
#include "transfer/peer_allowlist.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "transfer/kv_connector_config.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

TEST(PeerAllowlist, AllowsOnlyTheListedHosts) {
  PeerAllowlist list({"localhost", "10.1.2.3", "fe80::1"}, "pd_allowed_peer_hosts");
  EXPECT_FALSE(list.allows_any());
  EXPECT_TRUE(list.allows("127.0.0.1"));
  EXPECT_TRUE(list.allows("::ffff:127.0.0.1"));
  EXPECT_TRUE(list.allows("10.1.2.3"));
  EXPECT_TRUE(list.allows("fe80::1"));
  EXPECT_FALSE(list.allows("10.1.2.4"));
  EXPECT_FALSE(list.allows("192.168.0.1"));
  EXPECT_FALSE(list.allows(""));  // a peer whose address is unknown
  EXPECT_EQ(list.description(), "pd_allowed_peer_hosts (localhost, 10.1.2.3, fe80::1)");
}

TEST(PeerAllowlist, StarAndTheDefaultAllowEveryone) {
  EXPECT_TRUE(PeerAllowlist().allows("203.0.113.9"));
  PeerAllowlist star({"*"}, "k");
  EXPECT_TRUE(star.allows_any());
  EXPECT_TRUE(star.allows("203.0.113.9"));
  EXPECT_TRUE(star.allows(""));
}

TEST(PeerAllowlist, BadListsNameTheSetting) {
  try {
    PeerAllowlist({"no-such-host.invalid"}, "pd_allowed_peer_hosts");
    ADD_FAILURE() << "an unresolvable host was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("pd_allowed_peer_hosts: host 'no-such-host.invalid'"));
  }
  EXPECT_THROW(PeerAllowlist({}, "pd_allowed_peer_hosts"), Error);
}

TEST(PeerAllowlist, DefaultIsLoopbackAndTheNamedHosts) {
  EXPECT_EQ(default_allowed_peer_hosts({"localhost", "10.0.0.5", "0.0.0.0"}),
            (std::vector<std::string>{"127.0.0.1", "::1", "localhost", "10.0.0.5"}));
  PeerAllowlist loopback(default_allowed_peer_hosts({}), "k");
  EXPECT_TRUE(loopback.allows("127.0.0.1"));
  EXPECT_TRUE(loopback.allows("::1"));
  EXPECT_FALSE(loopback.allows("10.0.0.5"));
}

// The reference decoder YAML names only itself (localhost): a loopback sender is let in, and
// pd_allowed_peer_hosts replaces the default.
TEST(PeerAllowlist, ConnectorConfigDefaultsFromTheLmCacheConfig) {
  const char* yaml =
      "enable_pd: True\npd_role: receiver\ntransfer_channel: nixl\npd_peer_host: localhost\n"
      "pd_peer_init_port: 7300\npd_peer_alloc_port: 7400\npd_buffer_size: 1048576\n"
      "pd_buffer_device: cpu\n";
  KvTransferConfig kv = parse_kv_transfer_config(
      R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_consumer"})");
  std::optional<KvConnectorConfig> c =
      make_kv_connector_config(kv, parse_lmcache_config(yaml, "decoder.yaml", {}), "d");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->allowed_peer_hosts, (std::vector<std::string>{"127.0.0.1", "::1", "localhost"}));
  c = make_kv_connector_config(
      kv,
      parse_lmcache_config(yaml, "decoder.yaml",
                           {{"LMCACHE_PD_ALLOWED_PEER_HOSTS", "10.0.0.7, prefiller-2"}}),
      "d");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->allowed_peer_hosts, (std::vector<std::string>{"10.0.0.7", "prefiller-2"}));
  c = make_kv_connector_config(
      kv, parse_lmcache_config(std::string(yaml) + "pd_allowed_peer_hosts: ['*']\n", "d.yaml", {}),
      "d");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->allowed_peer_hosts, (std::vector<std::string>{"*"}));
}

}  // namespace
}  // namespace tandem
