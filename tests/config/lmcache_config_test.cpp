// LmCacheConfig: the reference YAML files load unchanged, LMCACHE_<KEY> overrides and legacy
// aliases apply, every invalid value and missing required key is an error naming the file (or
// variable), key and value, and unknown keys are warnings.
#include "config/lmcache_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "test_support.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kConfigDir =
    std::filesystem::path(TANDEM_SOURCE_DIR) / "examples/disagg_prefill/1p1d/configs";

constexpr const char* kReceiverYaml = R"(
enable_pd: True
pd_role: "receiver"
transfer_channel: "nixl"
pd_peer_host: "localhost"
pd_peer_init_port: 7300
pd_peer_alloc_port: 7400
pd_buffer_size: 2147483648
pd_buffer_device: "cpu"
)";

constexpr const char* kSenderYaml = R"(
enable_pd: True
pd_role: "sender"
transfer_channel: "nixl"
pd_proxy_host: "localhost"
pd_proxy_port: 7500
pd_buffer_size: 1073741824
pd_buffer_device: "cpu"
)";

LmCacheConfig parse(const std::string& yaml, const EnvVars& env = {}) {
  return parse_lmcache_config(yaml, "test.yaml", env);
}

// The error message of parsing `yaml`, or "" if it parsed.
std::string parse_error(const std::string& yaml, const EnvVars& env = {}) {
  try {
    parse(yaml, env);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LmCacheConfig, ReferencePrefillerConfigLoads) {
  LmCacheConfig c = load_lmcache_config(kConfigDir / "lmcache-prefiller-config.yaml", {});
  EXPECT_TRUE(c.is_sender());
  EXPECT_FALSE(c.local_cpu);
  EXPECT_EQ(c.max_local_cpu_size_gb, 0.0);
  EXPECT_EQ(c.max_local_disk_size_gb, 0.0);
  EXPECT_EQ(c.transfer_channel, "nixl");
  EXPECT_EQ(c.pd_proxy_host, "localhost");
  EXPECT_EQ(c.pd_proxy_port, 7500);
  EXPECT_EQ(c.pd_buffer_size, int64_t(1) << 30);
  EXPECT_EQ(c.pd_buffer_device, PdBufferDevice::kCuda);
  EXPECT_EQ(c.nixl_backends, std::vector<std::string>{"UCX"});
  EXPECT_EQ(c.pd_peer_host, "localhost");
  EXPECT_EQ(c.pd_peer_init_port, std::vector<int>{7300});
  EXPECT_EQ(c.pd_peer_alloc_port, std::vector<int>{7400});
  EXPECT_EQ(c.chunk_size, 256);
  EXPECT_EQ(c.pd_transfer_timeout_sec, 30.0);
  EXPECT_TRUE(c.warnings.empty());
  EXPECT_THAT(c.source, HasSubstr("lmcache-prefiller-config.yaml"));
}

TEST(LmCacheConfig, ReferenceDecoderConfigLoads) {
  LmCacheConfig c = load_lmcache_config(kConfigDir / "lmcache-decoder-config.yaml", {});
  EXPECT_TRUE(c.is_receiver());
  EXPECT_EQ(c.pd_buffer_size, int64_t(2) << 30);
  EXPECT_EQ(c.pd_buffer_device, PdBufferDevice::kCuda);
  EXPECT_EQ(c.pd_peer_host, "localhost");
  EXPECT_EQ(c.pd_peer_init_port, std::vector<int>{7300});
  EXPECT_EQ(c.pd_peer_alloc_port, std::vector<int>{7400});
  EXPECT_FALSE(c.pd_proxy_port.has_value());
  EXPECT_TRUE(c.warnings.empty());
}

TEST(LmCacheConfig, CpuVariantsLoad) {
  LmCacheConfig sender = load_lmcache_config(kConfigDir / "lmcache-prefiller-config-cpu.yaml", {});
  LmCacheConfig receiver = load_lmcache_config(kConfigDir / "lmcache-decoder-config-cpu.yaml", {});
  EXPECT_TRUE(sender.is_sender());
  EXPECT_TRUE(receiver.is_receiver());
  EXPECT_EQ(sender.pd_buffer_device, PdBufferDevice::kCpu);
  EXPECT_EQ(receiver.pd_buffer_device, PdBufferDevice::kCpu);
}

TEST(LmCacheConfig, DefaultsMatchLmCache) {
  LmCacheConfig c = parse("");
  EXPECT_EQ(c.chunk_size, 256);
  EXPECT_TRUE(c.local_cpu);
  EXPECT_EQ(c.max_local_cpu_size_gb, 5.0);
  EXPECT_FALSE(c.local_disk.has_value());
  EXPECT_FALSE(c.enable_pd);
  EXPECT_FALSE(c.save_decode_cache);
  EXPECT_EQ(c.nixl_backends, std::vector<std::string>{"UCX"});
  EXPECT_EQ(c.pd_transfer_timeout_sec, 30.0);
}

TEST(LmCacheConfig, EnvironmentOverridesEveryKind) {
  EnvVars env = {{"LMCACHE_PD_ROLE", "sender"},
                 {"LMCACHE_PD_PROXY_HOST", "proxy.local"},
                 {"LMCACHE_PD_PROXY_PORT", "7600"},
                 {"LMCACHE_PD_PEER_INIT_PORT", "7300, 7301"},
                 {"LMCACHE_PD_PEER_ALLOC_PORT", "[7400, 7401]"},
                 {"LMCACHE_NIXL_BACKENDS", "UCX"},
                 {"LMCACHE_LOCAL_CPU", "1"},
                 {"LMCACHE_MAX_LOCAL_CPU_SIZE", "2.5"},
                 {"LMCACHE_LOCAL_DISK", "file:///tmp/lmcache/"},
                 {"LMCACHE_CHUNK_SIZE", "'128'"},
                 {"LMCACHE_PD_TRANSFER_TIMEOUT_SEC", "5"},
                 {"LMCACHE_PD_BUFFER_DEVICE", "\"cuda\""}};
  LmCacheConfig c = parse(kReceiverYaml, env);
  EXPECT_TRUE(c.is_sender());
  EXPECT_EQ(c.pd_proxy_host, "proxy.local");
  EXPECT_EQ(c.pd_proxy_port, 7600);
  EXPECT_EQ(c.pd_peer_init_port, (std::vector<int>{7300, 7301}));
  EXPECT_EQ(c.pd_peer_alloc_port, (std::vector<int>{7400, 7401}));
  EXPECT_TRUE(c.local_cpu);
  EXPECT_EQ(c.max_local_cpu_size_gb, 2.5);
  EXPECT_EQ(c.local_disk, "/tmp/lmcache/");
  EXPECT_EQ(c.chunk_size, 128);
  EXPECT_EQ(c.pd_transfer_timeout_sec, 5.0);
  EXPECT_EQ(c.pd_buffer_device, PdBufferDevice::kCuda);
}

TEST(LmCacheConfig, EnvironmentAloneConfigures) {
  EnvVars env = {{"LMCACHE_ENABLE_PD", "True"},         {"LMCACHE_PD_ROLE", "receiver"},
                 {"LMCACHE_TRANSFER_CHANNEL", "nixl"},  {"LMCACHE_PD_PEER_HOST", "0.0.0.0"},
                 {"LMCACHE_PD_PEER_INIT_PORT", "7300"}, {"LMCACHE_PD_PEER_ALLOC_PORT", "7400"},
                 {"LMCACHE_PD_BUFFER_SIZE", "1048576"}, {"LMCACHE_PD_BUFFER_DEVICE", "cpu"}};
  LmCacheConfig c = load_lmcache_config(std::nullopt, env);
  EXPECT_TRUE(c.is_receiver());
  EXPECT_EQ(c.pd_buffer_size, 1048576);
  EXPECT_THAT(c.source, HasSubstr("environment"));
}

TEST(LmCacheConfig, ConfigFileFromEnvironmentAndExplicitFileWins) {
  EnvVars env = {{"LMCACHE_CONFIG_FILE", (kConfigDir / "lmcache-decoder-config.yaml").string()}};
  EXPECT_TRUE(load_lmcache_config(std::nullopt, env).is_receiver());
  EXPECT_TRUE(load_lmcache_config(kConfigDir / "lmcache-prefiller-config.yaml", env).is_sender());
}

TEST(LmCacheConfig, MissingFileIsNamed) {
  EnvVars env = {{"LMCACHE_CONFIG_FILE", "/nonexistent/lmcache.yaml"}};
  try {
    load_lmcache_config(std::nullopt, env);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/lmcache.yaml"));
  }
}

TEST(LmCacheConfig, LegacyAliases) {
  LmCacheConfig c = parse(R"(
enable_xpyd: true
nixl_role: receiver
transfer_channel: nixl
nixl_peer_host: 10.0.0.2
nixl_peer_init_port: [7300]
nixl_peer_alloc_port: 7400
nixl_buffer_size: 4096
nixl_buffer_device: cpu
nixl_proxy_host: proxy
nixl_proxy_port: 7500
)");
  EXPECT_TRUE(c.is_receiver());
  EXPECT_EQ(c.pd_peer_host, "10.0.0.2");
  EXPECT_EQ(c.pd_peer_init_port, std::vector<int>{7300});
  EXPECT_EQ(c.pd_peer_alloc_port, std::vector<int>{7400});
  EXPECT_EQ(c.pd_buffer_size, 4096);
  EXPECT_EQ(c.pd_buffer_device, PdBufferDevice::kCpu);
  EXPECT_EQ(c.pd_proxy_host, "proxy");
  EXPECT_EQ(c.pd_proxy_port, 7500);
  EXPECT_TRUE(c.warnings.empty());
}

TEST(LmCacheConfig, AliasEnvironmentVariableOverridesFileKey) {
  LmCacheConfig c = parse(kReceiverYaml, {{"LMCACHE_NIXL_PEER_INIT_PORT", "7301"}});
  EXPECT_EQ(c.pd_peer_init_port, std::vector<int>{7301});
}

TEST(LmCacheConfig, KeyAndAliasMustAgree) {
  EXPECT_THAT(parse_error(std::string(kReceiverYaml) + "nixl_role: sender\n"),
              AllOf(HasSubstr("test.yaml"), HasSubstr("'nixl_role' (alias of 'pd_role')"),
                    HasSubstr("sender"), HasSubstr("receiver")));
  EXPECT_EQ(parse_error(std::string(kReceiverYaml) + "nixl_role: receiver\n"), "");
}

TEST(LmCacheConfig, DuplicateKeysMustAgree) {
  EXPECT_THAT(parse_error("chunk_size: 128\nchunk_size: 64\n"),
              AllOf(HasSubstr("'chunk_size' is set twice"), HasSubstr("128"), HasSubstr("64")));
}

TEST(LmCacheConfig, UnknownKeysWarnByName) {
  testing::internal::CaptureStderr();
  LmCacheConfig c = parse("chunk_sise: 128\nremote_url: null\n", {{"LMCACHE_PD_ROLES", "x"}});
  std::string log = testing::internal::GetCapturedStderr();
  ASSERT_EQ(c.warnings.size(), 3u);
  EXPECT_THAT(c.warnings[0], AllOf(HasSubstr("test.yaml"), HasSubstr("'chunk_sise'")));
  EXPECT_THAT(c.warnings[1], HasSubstr("'remote_url'"));
  EXPECT_THAT(c.warnings[2], HasSubstr("LMCACHE_PD_ROLES"));
  EXPECT_THAT(log, HasSubstr("chunk_sise"));
  EXPECT_EQ(c.chunk_size, 256);
}

TEST(LmCacheConfig, NonKeyEnvironmentVariablesAreNotWarnedAbout) {
  LmCacheConfig c = parse("", {{"LMCACHE_LOG_LEVEL", "DEBUG"}, {"LMCACHE_USE_EXPERIMENTAL", "1"}});
  EXPECT_TRUE(c.warnings.empty());
}

struct BadValue {
  std::string line;   // the whole config
  std::string key;    // expected in the message
  std::string value;  // expected in the message
};

TEST(LmCacheConfig, EveryInvalidValueIsNamed) {
  const BadValue cases[] = {
      {"chunk_size: 0", "chunk_size", "0"},
      {"chunk_size: 12.5", "chunk_size", "12.5"},
      {"chunk_size: [1]", "chunk_size", "[1]"},
      {"local_cpu: maybe", "local_cpu", "maybe"},
      {"max_local_cpu_size: -1", "max_local_cpu_size", "-1"},
      {"max_local_cpu_size: lots", "max_local_cpu_size", "lots"},
      {"max_local_disk_size: .nan", "max_local_disk_size", ".nan"},
      {"local_disk: file://nowhere", "local_disk", "file://nowhere"},
      {"save_decode_cache: 2", "save_decode_cache", "2"},
      {"enable_pd: sometimes", "enable_pd", "sometimes"},
      {"pd_role: prefiller", "pd_role", "prefiller"},
      {"transfer_channel: mooncake", "transfer_channel", "mooncake"},
      {"nixl_backends: [UCX, GDS]", "nixl_backends", "[UCX, GDS]"},
      {"nixl_backends: []", "nixl_backends", "[]"},
      {"pd_buffer_size: 1GB", "pd_buffer_size", "1GB"},
      {"pd_buffer_size: 0", "pd_buffer_size", "0"},
      {"pd_buffer_device: tpu", "pd_buffer_device", "tpu"},
      {"pd_peer_host: [a, b]", "pd_peer_host", "[a, b]"},
      {"pd_peer_host: ''", "pd_peer_host", ""},
      {"pd_peer_init_port: 70000", "pd_peer_init_port", "70000"},
      {"pd_peer_alloc_port: [7400, x]", "pd_peer_alloc_port", "[7400, x]"},
      {"pd_proxy_port: 0", "pd_proxy_port", "0"},
      {"pd_proxy_host: {a: 1}", "pd_proxy_host", "{a: 1}"},
      {"pd_transfer_timeout_sec: 0", "pd_transfer_timeout_sec", "0"},
  };
  for (const BadValue& bad : cases) {
    std::string message = parse_error(bad.line + "\n");
    EXPECT_THAT(message, AllOf(HasSubstr("test.yaml"), HasSubstr("'" + bad.key + "'"),
                               HasSubstr("got '" + bad.value + "'")))
        << bad.line;
  }
}

TEST(LmCacheConfig, InvalidEnvironmentValueNamesTheVariable) {
  std::string message = parse_error(kReceiverYaml, {{"LMCACHE_PD_BUFFER_SIZE", "lots"}});
  EXPECT_THAT(message, AllOf(HasSubstr("environment variable LMCACHE_PD_BUFFER_SIZE"),
                             HasSubstr("'pd_buffer_size'"), HasSubstr("got 'lots'")));
}

TEST(LmCacheConfig, MissingRequiredKeysAreNamed) {
  const std::pair<std::string, std::string> cases[] = {
      {"enable_pd: true\npd_buffer_size: 1\npd_buffer_device: cpu\ntransfer_channel: nixl\n",
       "'pd_role' is required"},
      {"enable_pd: true\npd_role: receiver\npd_buffer_device: cpu\ntransfer_channel: nixl\n",
       "'pd_buffer_size' is required"},
      {"enable_pd: true\npd_role: sender\npd_buffer_size: 1\ntransfer_channel: nixl\n",
       "'pd_buffer_device' is required"},
      {"enable_pd: true\npd_role: sender\npd_buffer_size: 1\npd_buffer_device: cpu\n",
       "'transfer_channel' is required"},
      {"enable_pd: true\npd_role: receiver\npd_buffer_size: 1\npd_buffer_device: cpu\n"
       "transfer_channel: nixl\npd_peer_init_port: 1\npd_peer_alloc_port: 2\n",
       "'pd_peer_host' is required"},
      {"enable_pd: true\npd_role: receiver\npd_buffer_size: 1\npd_buffer_device: cpu\n"
       "transfer_channel: nixl\npd_peer_host: h\npd_peer_alloc_port: 2\n",
       "'pd_peer_init_port' is required"},
      {"enable_pd: true\npd_role: receiver\npd_buffer_size: 1\npd_buffer_device: cpu\n"
       "transfer_channel: nixl\npd_peer_host: h\npd_peer_init_port: 1\n",
       "'pd_peer_alloc_port' is required"},
      {"enable_pd: true\npd_role: sender\npd_buffer_size: 1\npd_buffer_device: cpu\n"
       "transfer_channel: nixl\npd_proxy_port: 7500\n",
       "'pd_proxy_host' is required"},
      {"enable_pd: true\npd_role: sender\npd_buffer_size: 1\npd_buffer_device: cpu\n"
       "transfer_channel: nixl\npd_proxy_host: h\n",
       "'pd_proxy_port' is required"},
  };
  for (const auto& [yaml, expected] : cases) {
    EXPECT_THAT(parse_error(yaml), AllOf(HasSubstr("test.yaml"), HasSubstr(expected))) << yaml;
  }
}

TEST(LmCacheConfig, CrossKeyRules) {
  EXPECT_THAT(parse_error(std::string(kReceiverYaml) + "save_decode_cache: true\n"),
              AllOf(HasSubstr("'save_decode_cache'"), HasSubstr("receiver")));
  EXPECT_EQ(parse_error(std::string(kSenderYaml) + "save_decode_cache: true\n"), "");
  EXPECT_THAT(parse_error(kReceiverYaml, {{"LMCACHE_PD_PEER_INIT_PORT", "7300,7301"}}),
              HasSubstr("lists 2 ports but 'pd_peer_alloc_port' lists 1"));
  EXPECT_THAT(parse_error(kReceiverYaml, {{"LMCACHE_PD_PEER_ALLOC_PORT", "7300"}}),
              HasSubstr("must differ, both are 7300"));
  // Without enable_pd the PD keys are not required.
  EXPECT_EQ(parse_error("pd_role: receiver\n"), "");
}

TEST(LmCacheConfig, LocalDiskForms) {
  EXPECT_EQ(parse("local_disk: \"file:///data/cache/\"\n").local_disk, "/data/cache/");
  EXPECT_EQ(parse("local_disk: /data/cache\n").local_disk, "/data/cache");
  EXPECT_FALSE(parse("local_disk: null\n").local_disk.has_value());
}

TEST(LmCacheConfig, MalformedYamlIsNamed) {
  EXPECT_THAT(parse_error("enable_pd: [true\n"),
              AllOf(HasSubstr("test.yaml"), HasSubstr("not valid YAML")));
  EXPECT_THAT(parse_error("- a\n- b\n"), AllOf(HasSubstr("test.yaml"), HasSubstr("mapping")));
}

}  // namespace
}  // namespace tandem
