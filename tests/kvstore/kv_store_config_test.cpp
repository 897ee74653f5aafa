// Which KV tiers a --kv-transfer-config role and an LMCache YAML give: LMCache's defaults
// (local_cpu on, 5 GB) for kv_both and kv_producer, none for a decoder, a disk tier only with a
// positive size, and clear errors for save_decode_cache and a sizeless local_disk.
#include "kvstore/kv_store_config.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace tandem {
namespace {

KvTransferConfig role(const char* name) {
  return parse_kv_transfer_config(
      std::string(R"({"kv_connector":"LMCacheConnectorV1","kv_role":")") + name + "\"}");
}

LmCacheConfig yaml(const std::string& text) { return parse_lmcache_config(text, "t.yaml", {}); }

std::string error_of(const KvTransferConfig& kv, const LmCacheConfig& c) {
  try {
    (void)make_kv_store_config(kv, c);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(KvStoreConfig, LmCacheDefaultsGiveAFiveGigabyteCpuTier) {
  for (const char* r : {"kv_both", "kv_producer"}) {
    auto c =
        make_kv_store_config(role(r), yaml(r == std::string("kv_both") ? "" : "chunk_size: 64"));
    ASSERT_TRUE(c) << r;
    EXPECT_EQ(c->store.cpu_bytes, uint64_t(5) << 30);
    EXPECT_FALSE(c->store.disk_dir);
  }
}

TEST(KvStoreConfig, DiskTierAndSizes) {
  auto c = make_kv_store_config(
      role("kv_both"), yaml("chunk_size: 128\nlocal_cpu: false\nlocal_disk: \"file:///tmp/kv/\"\n"
                            "max_local_disk_size: 0.5\n"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->chunk_size, 128);
  EXPECT_EQ(c->store.cpu_bytes, 0u);
  EXPECT_EQ(c->store.disk_dir, std::filesystem::path("/tmp/kv/"));
  EXPECT_EQ(c->store.disk_bytes, uint64_t(1) << 29);
}

TEST(KvStoreConfig, NoTiers) {
  EXPECT_FALSE(make_kv_store_config(role("kv_both"), yaml("local_cpu: false")));
  EXPECT_FALSE(make_kv_store_config(role("kv_both"), yaml("max_local_cpu_size: 0")));
  EXPECT_FALSE(make_kv_store_config(role("kv_consumer"), yaml("")));
  EXPECT_FALSE(make_kv_store_config(
      role("kv_both"), yaml("enable_pd: true\npd_role: receiver\ntransfer_channel: nixl\n"
                            "pd_buffer_size: 1000\npd_buffer_device: cpu\npd_peer_host: h\n"
                            "pd_peer_init_port: 1\npd_peer_alloc_port: 2\n")));
}

TEST(KvStoreConfig, RefusedSettingsNameTheFileAndKey) {
  std::string e = error_of(role("kv_both"), yaml("save_decode_cache: true"));
  EXPECT_NE(e.find("t.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("'save_decode_cache'"), std::string::npos) << e;
  e = error_of(role("kv_producer"), yaml("local_disk: /tmp/kv\n"));
  EXPECT_NE(e.find("'max_local_disk_size' must be positive"), std::string::npos) << e;
  EXPECT_NE(e.find("/tmp/kv"), std::string::npos) << e;
  // The decoder's own refusal, from the LMCache config (as LMCache does).
  try {
    yaml(
        "enable_pd: true\npd_role: receiver\ntransfer_channel: nixl\npd_buffer_size: 1000\n"
        "pd_buffer_device: cpu\npd_peer_host: h\npd_peer_init_port: 1\npd_peer_alloc_port: 2\n"
        "save_decode_cache: true\n");
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("'save_decode_cache' must be false"), std::string::npos)
        << err.what();
  }
}

}  // namespace
}  // namespace tandem
