// make_kv_connector_config: --kv-transfer-config and the LMCache YAML must agree on the role
// (kv_producer <-> pd_role sender, kv_consumer <-> receiver), errors name the file, key and
// value; the reference configs (CUDA buffers included, which fall back to host memory) and the
// reference kv_connector_extra_config resolve to the expected connector settings.
#include "transfer/kv_connector_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kExampleConfigDir =
    std::filesystem::path(TANDEM_SOURCE_DIR) / "examples/disagg_prefill/1p1d/configs";

LmCacheConfig example(const char* name, EnvVars env = {}) {
  return load_lmcache_config(kExampleConfigDir / name, env);
}

KvTransferConfig transfer(const char* role, const char* extra = "{}") {
  return parse_kv_transfer_config(
      fmt::format(R"({{"kv_connector":"LMCacheConnectorV1","kv_role":"{}",)"
                  R"("kv_connector_extra_config":{}}})",
                  role, extra));
}

std::string connector_error_of(const KvTransferConfig& kv, const LmCacheConfig& c) {
  try {
    make_kv_connector_config(kv, c, "test");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(KvConnectorConfig, ReferenceConfigsAndFlags) {
  auto producer = make_kv_connector_config(
      transfer("kv_producer", R"({"discard_partial_chunks":false,"lmcache_rpc_port":"producer1"})"),
      example("lmcache-prefiller-config.yaml"), "p");
  ASSERT_TRUE(producer);
  EXPECT_EQ(producer->role, PdRole::kSender);
  EXPECT_EQ(producer->chunk_size, 256);
  EXPECT_EQ(producer->partial_chunks, PartialChunk::kInclude);
  EXPECT_EQ(producer->proxy_host, "localhost");
  EXPECT_EQ(producer->proxy_port, 7500);
  EXPECT_EQ(producer->peer, (ReceiverAddress{"localhost", 7300, 7400}));
  EXPECT_EQ(producer->buffer_bytes, 1073741824u);
  EXPECT_EQ(producer->transfer_timeout, std::chrono::seconds(30));

  auto consumer = make_kv_connector_config(
      transfer("kv_consumer", R"({"discard_partial_chunks":false,"lmcache_rpc_port":"consumer1",)"
                              R"("skip_last_n_tokens":1})"),
      example("lmcache-decoder-config-cpu.yaml", {{"LMCACHE_PD_TRANSFER_TIMEOUT_SEC", "2.5"}}),
      "d");
  ASSERT_TRUE(consumer);
  EXPECT_EQ(consumer->role, PdRole::kReceiver);
  EXPECT_EQ(consumer->skip_last_n_tokens, 1);
  EXPECT_EQ(consumer->peer, (ReceiverAddress{"localhost", 7300, 7400}));
  EXPECT_EQ(consumer->transfer_timeout, std::chrono::milliseconds(2500));
  EXPECT_FALSE(consumer->proxy_host);

  // Consumers compute the last prompt token by default; discard_partial_chunks is honoured.
  auto defaults =
      make_kv_connector_config(transfer("kv_consumer", R"({"discard_partial_chunks":true})"),
                               example("lmcache-decoder-config.yaml"), "d");
  EXPECT_EQ(defaults->skip_last_n_tokens, 1);
  EXPECT_EQ(defaults->partial_chunks, PartialChunk::kDiscard);
}

TEST(KvConnectorConfig, RolesMustAgree) {
  std::string e =
      connector_error_of(transfer("kv_producer"), example("lmcache-decoder-config-cpu.yaml"));
  EXPECT_THAT(e, HasSubstr("lmcache-decoder-config-cpu.yaml"));
  EXPECT_THAT(e, HasSubstr("'pd_role' is 'receiver'"));
  EXPECT_THAT(e, HasSubstr("kv_producer"));
  e = connector_error_of(transfer("kv_consumer"), example("lmcache-prefiller-config-cpu.yaml"));
  EXPECT_THAT(e, HasSubstr("'pd_role' is 'sender'"));
  EXPECT_THAT(e, HasSubstr("kv_consumer"));
  // No LMCache config at all: enable_pd is false.
  e = connector_error_of(transfer("kv_consumer"), load_lmcache_config(std::nullopt, EnvVars{}));
  EXPECT_THAT(e, HasSubstr("enable_pd"));
  EXPECT_THAT(e, HasSubstr("LMCACHE_CONFIG_FILE"));
  // kv_both follows pd_role, and without enable_pd transfers nothing.
  EXPECT_FALSE(make_kv_connector_config(transfer("kv_both"),
                                        load_lmcache_config(std::nullopt, EnvVars{}), "b"));
  auto both = make_kv_connector_config(transfer("kv_both"),
                                       example("lmcache-decoder-config-cpu.yaml"), "b");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->role, PdRole::kReceiver);
}

TEST(KvConnectorConfig, BadExtraConfigValues) {
  LmCacheConfig c = example("lmcache-decoder-config-cpu.yaml");
  EXPECT_THAT(connector_error_of(transfer("kv_consumer", R"({"skip_last_n_tokens":"1"})"), c),
              HasSubstr("skip_last_n_tokens"));
  EXPECT_THAT(connector_error_of(transfer("kv_consumer", R"({"skip_last_n_tokens":-1})"), c),
              HasSubstr("skip_last_n_tokens"));
  EXPECT_THAT(connector_error_of(transfer("kv_consumer", R"({"discard_partial_chunks":"no"})"), c),
              HasSubstr("discard_partial_chunks"));
}

// The transfer channel's heartbeats: 1 s / 15 s by default, LMCACHE_PD_HEARTBEAT_* overrides, and
// a timeout that would not outlast two heartbeats is an error naming the file and both keys.
TEST(KvConnectorConfig, HeartbeatIntervalAndTimeout) {
  KvTransferConfig producer = transfer("kv_producer");
  auto defaults = make_kv_connector_config(producer, example("lmcache-prefiller-config-cpu.yaml"), "p");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->heartbeat_interval, std::chrono::seconds(1));
  EXPECT_EQ(defaults->heartbeat_timeout, std::chrono::seconds(15));
  auto fast = make_kv_connector_config(
      producer,
      example("lmcache-prefiller-config-cpu.yaml", {{"LMCACHE_PD_HEARTBEAT_INTERVAL_SEC", "0.2"},
                                                    {"LMCACHE_PD_HEARTBEAT_TIMEOUT_SEC", "2"}}),
      "p");
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->heartbeat_interval, std::chrono::milliseconds(200));
  EXPECT_EQ(fast->heartbeat_timeout, std::chrono::seconds(2));
  std::string error = connector_error_of(
      producer,
      example("lmcache-prefiller-config-cpu.yaml", {{"LMCACHE_PD_HEARTBEAT_INTERVAL_SEC", "2"},
                                                    {"LMCACHE_PD_HEARTBEAT_TIMEOUT_SEC", "3"}}));
  EXPECT_THAT(error, HasSubstr("pd_heartbeat_timeout_sec"));
  EXPECT_THAT(error, HasSubstr("pd_heartbeat_interval_sec"));
  EXPECT_THAT(error, HasSubstr("lmcache-prefiller-config-cpu.yaml"));
}

}  // namespace
}  // namespace tandem
