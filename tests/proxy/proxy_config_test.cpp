// build_proxy_config: the reference proxy's host/port pairing (consecutive ports with --num-*,
// broadcast, one-to-one lists), receiver ports per decoder, and a clear error for every bad
// value; plus `tandem proxy` rejecting bad flags on the command line.
#include "proxy/proxy_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "test_support.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

std::string error_of(const ProxyArgs& args) {
  try {
    build_proxy_config(args);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ProxyConfig, DefaultsAreTheReference1p1dPorts) {
  ProxyConfig c = build_proxy_config(ProxyArgs{});
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.port, 9100);
  ASSERT_EQ(c.prefillers.size(), 1u);
  EXPECT_EQ(c.prefillers[0], (HttpEndpoint{"localhost", 7100}));
  ASSERT_EQ(c.decoders.size(), 1u);
  EXPECT_EQ(c.decoders[0], (DecoderEndpoint{{"localhost", 7200}, 7300, 7400}));
  EXPECT_EQ(c.notify_host, "localhost");
  EXPECT_EQ(c.notify_port, 7500);
  EXPECT_EQ(c.routing, RoutingPolicy::kRoundRobin);
  EXPECT_EQ(c.transfer_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.health_interval, std::chrono::seconds(2));
  EXPECT_EQ(c.health_timeout, std::chrono::seconds(5));
}

TEST(ProxyConfig, OneHostOnePortAndACountGiveConsecutivePorts) {
  ProxyArgs a;
  a.num_prefillers = 2;
  a.num_decoders = 2;
  ProxyConfig c = build_proxy_config(a);
  ASSERT_EQ(c.prefillers.size(), 2u);
  EXPECT_EQ(c.prefillers[1], (HttpEndpoint{"localhost", 7101}));
  ASSERT_EQ(c.decoders.size(), 2u);
  EXPECT_EQ(c.decoders[1], (DecoderEndpoint{{"localhost", 7201}, 7301, 7401}));
}

TEST(ProxyConfig, ListsPairOneToOneOrBroadcast) {
  ProxyArgs a;
  a.prefiller_hosts = {"p1", "p2"};
  a.prefiller_ports = {8100};
  a.decoder_hosts = {"d1", "d2"};
  a.decoder_ports = {8200, 8201};
  a.decoder_init_ports = {8300};
  a.decoder_alloc_ports = {8400, 8401};
  ProxyConfig c = build_proxy_config(a);
  EXPECT_EQ(c.prefillers, (std::vector<HttpEndpoint>{{"p1", 8100}, {"p2", 8100}}));
  // Different hosts share one init port; alloc ports are one per decoder.
  EXPECT_EQ(c.decoders[0], (DecoderEndpoint{{"d1", 8200}, 8300, 8400}));
  EXPECT_EQ(c.decoders[1], (DecoderEndpoint{{"d2", 8201}, 8300, 8401}));
  a.num_decoders = 2;
  EXPECT_NO_THROW(build_proxy_config(a));
}

TEST(ProxyConfig, ApiKeyIsRequiredFromClientsAndSentToEnginesUnlessAnEngineKeyIsGiven) {
  ProxyArgs a;
  ProxyConfig c = build_proxy_config(a);
  EXPECT_FALSE(c.client_api_key);
  EXPECT_FALSE(c.api_key);
  a.api_key = "client";
  c = build_proxy_config(a);
  EXPECT_EQ(c.client_api_key, "client");
  EXPECT_EQ(c.api_key, "client");
  a.engine_api_key = "engine";
  c = build_proxy_config(a);
  EXPECT_EQ(c.client_api_key, "client");
  EXPECT_EQ(c.api_key, "engine");
  a.engine_api_key = "";
  EXPECT_THAT(error_of(a), HasSubstr("--engine-api-key: empty"));
}

TEST(ProxyConfig, BadValuesNameTheFlag) {
  ProxyArgs a;
  a.prefiller_hosts = {"a", "b", "c"};
  a.prefiller_ports = {1, 2};
  EXPECT_THAT(error_of(a), HasSubstr("--prefiller-host lists 3 hosts but --prefiller-port lists 2"));
  a = {};
  a.decoder_ports = {7200, 7201};
  a.num_decoders = 3;
  EXPECT_THAT(error_of(a), HasSubstr("--num-decoders 3 does not match the 2 decoders"));
  a = {};
  a.decoder_ports = {7200, 7201, 7202};
  a.decoder_init_ports = {1, 2};
  EXPECT_THAT(error_of(a), HasSubstr("--decoder-init-port lists 2 ports for 3 decoders"));
  a = {};
  a.prefiller_ports = {70000};
  EXPECT_THAT(error_of(a), HasSubstr("--prefiller-port: port 70000 is out of range"));
  a = {};
  a.num_prefillers = 0;
  EXPECT_THAT(error_of(a), HasSubstr("--num-prefillers: 0"));
  a = {};
  a.transfer_timeout_s = -1;
  EXPECT_THAT(error_of(a), HasSubstr("--transfer-timeout"));
  a = {};
  a.health_check_interval_s = -2;
  EXPECT_THAT(error_of(a), HasSubstr("--health-check-interval: -2"));
  a = {};
  a.health_check_timeout_s = 0;
  EXPECT_THAT(error_of(a), HasSubstr("--health-check-timeout: 0"));
  a = {};
  a.health_check_interval_s = 0;  // probes off
  EXPECT_EQ(build_proxy_config(a).health_interval, std::chrono::milliseconds(0));
  a = {};
  a.routing = "random";
  EXPECT_THAT(error_of(a), HasSubstr("--routing: 'random'"));
  EXPECT_THROW(parse_port_list("7100,x", "--prefiller-port"), Error);
  EXPECT_THROW(split_csv("a,,b", "--decoder-host"), Error);
  EXPECT_EQ(split_csv(" a, b ", "--decoder-host"), (std::vector<std::string>{"a", "b"}));
}

TEST(ProxyCommand, RejectsBadFlagsWithOneLine) {
  struct Case {
    const char* args;
    const char* message;
  };
  for (const Case& c : {Case{"--num-prefillers 2 --prefiller-port 7100,7101,7102",
                             "--num-prefillers 2 does not match the 3 prefillers"},
                        Case{"--decoder-port 7200,abc", "--decoder-port: 'abc' is not a port"},
                        Case{"--routing random", "--routing: 'random'"},
                        Case{"--decode-timeout 0", "--decode-timeout"},
                        Case{"--bogus", "--bogus"}}) {
    test::CommandResult r = test::run_tandem(std::string("proxy ") + c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.args;
  }
}

}  // namespace
}  // namespace tandem
