// --kv-transfer-config parsing: vLLM's keys and defaults, and one clear error per bad input.
#include "config/kv_transfer_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

std::string error_of(const std::string& text) {
  try {
    parse_kv_transfer_config(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(KvTransferConfig, ParsesTheLmCacheProducerConfig) {
  KvTransferConfig c = parse_kv_transfer_config(
      R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_producer",
          "kv_connector_extra_config":{"discard_partial_chunks":false,"lmcache_rpc_port":"p1"}})");
  EXPECT_EQ(c.kv_connector, "LMCacheConnectorV1");
  EXPECT_EQ(c.kv_role, KvRole::kProducer);
  EXPECT_TRUE(c.is_producer());
  EXPECT_FALSE(c.is_consumer());
  EXPECT_EQ(c.kv_connector_extra_config["lmcache_rpc_port"], "p1");
  EXPECT_EQ(c.kv_parallel_size, 1);
  EXPECT_FALSE(c.kv_rank.has_value());
}

TEST(KvTransferConfig, ParsesRolesAndOptionalKeys) {
  KvTransferConfig c = parse_kv_transfer_config(
      R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both","kv_rank":1,
          "kv_parallel_size":2,"kv_ip":"10.0.0.2","kv_port":15000,"engine_id":"e1"})");
  EXPECT_EQ(c.kv_role, KvRole::kBoth);
  EXPECT_TRUE(c.is_producer() && c.is_consumer());
  EXPECT_EQ(c.kv_rank, 1);
  EXPECT_EQ(c.kv_ip, "10.0.0.2");
  EXPECT_EQ(c.kv_port, 15000);
  EXPECT_EQ(c.engine_id, "e1");
  EXPECT_TRUE(c.kv_connector_extra_config.is_object());
  EXPECT_EQ(parse_kv_transfer_config(R"({"kv_connector":"LMCacheConnectorV1",
                                         "kv_role":"kv_consumer"})").kv_role,
            KvRole::kConsumer);
  EXPECT_STREQ(kv_role_name(KvRole::kConsumer), "kv_consumer");
}

TEST(KvTransferConfig, RejectsBadInputWithANamedKey) {
  EXPECT_THAT(error_of("{not json"), HasSubstr("not valid JSON"));
  EXPECT_THAT(error_of("[1]"), HasSubstr("must be a JSON object"));
  EXPECT_THAT(error_of(R"({"kv_role":"kv_both"})"), HasSubstr("'kv_connector' is required"));
  EXPECT_THAT(error_of(R"({"kv_connector":"LMCacheConnectorV1"})"),
              HasSubstr("'kv_role' is required"));
  EXPECT_THAT(error_of(R"({"kv_connector":"NixlConnector","kv_role":"kv_both"})"),
              HasSubstr("'kv_connector' must be 'LMCacheConnectorV1', got 'NixlConnector'"));
  EXPECT_THAT(error_of(R"({"kv_connector":"LMCacheConnectorV1","kv_role":"prefill"})"),
              HasSubstr("'kv_role' must be one of kv_producer, kv_consumer, kv_both, got "
                        "'prefill'"));
  EXPECT_THAT(error_of(R"({"kv_connector":"LMCacheConnectorV1","kv_role":3})"),
              HasSubstr("'kv_role' must be a string"));
  EXPECT_THAT(error_of(R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both",
                           "kv_connector_extra_config":[1]})"),
              HasSubstr("'kv_connector_extra_config' must be an object"));
  EXPECT_THAT(error_of(R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both",
                           "kv_colour":"red"})"),
              HasSubstr("unknown key 'kv_colour'"));
  EXPECT_THAT(error_of(R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both",
                           "kv_port":70000})"),
              HasSubstr("'kv_port' must be at most 65535"));
  EXPECT_THAT(error_of(R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both",
                           "kv_rank":2,"kv_parallel_size":2})"),
              HasSubstr("'kv_rank' (2) must be less than 'kv_parallel_size' (2)"));
}

}  // namespace
}  // namespace tandem
