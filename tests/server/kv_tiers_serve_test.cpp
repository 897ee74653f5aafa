// The KV tiers through `tandem serve` without disaggregated prefill: vLLM + LMCache's offload
// setup (--kv-transfer-config kv_both, an LMCache YAML with local_disk) on a small random model
// made by `tandem make-model`. A repeated 1,024-token prompt is served from the disk tier (the
// /metrics counters prove it) with the answer of a server without tiers; chunk files corrupted,
// truncated and deleted under the running server are detected, deleted, recomputed and stored
// again with every answer unchanged; after a restart the disk tier serves a new prompt's
// 1,000-token prefix and only the new tokens are computed. Start-up refuses save_decode_cache and a
// bad local_disk.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "core/json_file.h"
#include "server/serve_process.h"
#include "test_support.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kPrefix = 1000;

std::vector<int32_t> prompt_with_suffix(int suffix_len, int seed) {
  std::vector<int32_t> ids = {1};
  for (int i = 1; i < kPrefix; ++i) ids.push_back(int32_t(3 + (i * 131) % 500));
  for (int i = 0; i < suffix_len; ++i) ids.push_back(int32_t(3 + (i * 37 + seed * 977) % 500));
  return ids;
}

// The value of `name{...labels...}` (labels containing `label`, e.g. tier="disk"), or -1.
double metric(const std::string& page, const std::string& name, const std::string& label = "") {
  std::regex re("(^|\n)" + name + R"(\{([^}]*)\} (\S+))");
  for (std::sregex_iterator it(page.begin(), page.end(), re), end; it != end; ++it) {
    if ((*it)[2].str().find(label) != std::string::npos) return std::stod((*it)[3]);
  }
  return -1;
}

class KvTiersServe : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(test::make_temp_dir("tandem-kv-tiers-serve"));
    json config = read_json_file(test::golden_model("stories260K") / "config.json");
    config["max_position_embeddings"] = 2048;
    std::ofstream(*root_ / "config.json") << config.dump();
    auto made = test::run_tandem("make-model --config '" + (*root_ / "config.json").string() +
                                 "' --out '" + (*root_ / "model").string() +
                                 "' --dtype f32 --seed 3 --threads 1 --tokenizer '" +
                                 test::golden_model("stories260K").string() + "'");
    ASSERT_EQ(made.exit_code, 0) << made.err;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }

  static fs::path disk_dir() { return *root_ / "disk"; }

  // An LMCache YAML with `extra` appended; its path.
  static std::string yaml(const std::string& name, const std::string& extra) {
    fs::path p = *root_ / name;
    std::ofstream(p) << "chunk_size: 100\nlocal_cpu: False\nmax_local_cpu_size: 0\n"
                        "local_disk: \"file://" +
                            disk_dir().string() + "/\"\n"
                     << extra;
    return p.string();
  }

  static std::vector<std::string> serve_args(std::optional<std::string> kv_config) {
    std::vector<std::string> args = {(*root_ / "model").string(),
                                     "--port",
                                     "0",
                                     "--threads",
                                     "1",
                                     "--no-enable-prefix-caching",
                                     "--kv-cache-memory",
                                     "8MiB",
                                     "--max-model-len",
                                     "2048"};
    if (kv_config) {
      for (std::string a :
           {"--kv-transfer-config", R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"})",
            "--kv-config"}) {
        args.push_back(a);
      }
      args.push_back(*kv_config);
    }
    return args;
  }

  static std::string complete(int port, const std::vector<int32_t>& prompt) {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(120, 0);
    json body = {{"prompt", prompt}, {"max_tokens", 8}, {"temperature", 0}, {"ignore_eos", true}};
    auto r = client.Post("/v1/completions", body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return "";
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body)["choices"][0]["text"].get<std::string>();
  }

  static std::string metrics(int port) {
    httplib::Client client("127.0.0.1", port);
    auto r = client.Get("/metrics");
    return r ? r->body : "";
  }

  // Waits (up to 20 s) until `name{...label...}` reaches at least `value` (the engine publishes
  // its counters after each step, disk writes finish in the background); the page.
  static std::string wait_metric(int port, const std::string& name, double value,
                                 const std::string& label = "tier=\"disk\"") {
    std::string page = metrics(port);
    for (int i = 0; i < 2000 && metric(page, name, label) < value; ++i) {
      std::this_thread::sleep_for(10ms);
      page = metrics(port);
    }
    return page;
  }

  static fs::path chunk_file(int index) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(disk_dir())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files.at(size_t(index));
  }

  static fs::path* root_;
};

fs::path* KvTiersServe::root_ = nullptr;

TEST_F(KvTiersServe, DiskTierServesSurvivesDamageAndRestarts) {
  const auto repeated = prompt_with_suffix(24, 1), fresh = prompt_with_suffix(30, 2);
  std::string expected_repeated, expected_fresh;
  {
    test::ServeProcess plain(serve_args(std::nullopt));
    int port = plain.wait_for_port();
    ASSERT_GT(port, 0) << plain.log();
    expected_repeated = complete(port, repeated);
    expected_fresh = complete(port, fresh);
    EXPECT_EQ(metric(metrics(port), "tandem:kv_tier_lookups_total"), -1);  // no tiers
  }
  fs::remove_all(disk_dir());
  const std::string config = yaml("disk.yaml", "max_local_disk_size: 0.01\n");
  {
    test::ServeProcess server(serve_args(config));
    int port = server.wait_for_port();
    ASSERT_GT(port, 0) << server.log();
    EXPECT_EQ(complete(port, repeated), expected_repeated);
    wait_metric(port, "tandem:pd_prompt_tokens_computed_total", 1024, "");
    std::string page = wait_metric(port, "tandem:kv_tier_stored_tokens_total", 1024);
    ASSERT_EQ(metric(page, "tandem:kv_tier_stored_tokens_total", "disk"), 1024) << page;
    EXPECT_EQ(metric(page, "tandem:pd_prompt_tokens_computed_total"), 1024);
    EXPECT_EQ(metric(page, "tandem:kv_tier_bytes_used", "disk"), 11 * 96 + 1024 * 1280);
    EXPECT_EQ(metric(page, "tandem:kv_tier_lookups_total", "cpu"), -1);  // local_cpu off

    // Repeated: all but the last prompt token come from the disk.
    EXPECT_EQ(complete(port, repeated), expected_repeated);
    page = wait_metric(port, "tandem:pd_prompt_tokens_computed_total", 1024 + 1, "");
    EXPECT_EQ(metric(page, "tandem:kv_tier_hit_tokens_total", "disk"), 1023);
    EXPECT_EQ(metric(page, "tandem:pd_prompt_tokens_computed_total"), 1024 + 1);
    EXPECT_NE(server.log().find("1024 prompt tokens, 1023 hit (engine 0, cpu 0, disk 1023), 1 "
                                "computed"),
              std::string::npos)
        << server.log();

    // Chunks 3, 5 and 7 (in file-name order) damaged: each failing file is found by its read,
    // deleted, and its tokens computed again; the answer does not change.
    {
      std::fstream f(chunk_file(3), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(2000);
      f.put('\x55');
      f.seekp(3000);
      f.put('\x66');
    }
    fs::resize_file(chunk_file(5), 5000);
    fs::remove(chunk_file(7));
    // Each request stops at the first bad chunk, deletes it and stores it again once computed:
    // within a few requests the whole prompt is served from the disk again.
    bool whole_again = false;
    for (int round = 0; round < 20 && !whole_again; ++round) {
      double hits = metric(metrics(port), "tandem:kv_tier_hit_tokens_total", "disk");
      EXPECT_EQ(complete(port, repeated), expected_repeated) << "round " << round;
      whole_again = metric(metrics(port), "tandem:kv_tier_hit_tokens_total", "disk") - hits == 1023;
      std::this_thread::sleep_for(50ms);  // the re-stored chunk's file is written meanwhile
    }
    EXPECT_TRUE(whole_again);
    page = metrics(port);
    EXPECT_EQ(metric(page, "tandem:kv_tier_corrupt_chunks_total", "disk"), 3) << page;
    EXPECT_EQ(metric(page, "tandem:kv_tier_bytes_used", "disk"), 11 * 96 + 1024 * 1280);
    EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
  }
  // A restart: the disk tier's files are found again and serve the prefix of a new prompt.
  test::ServeProcess restarted(serve_args(config));
  int port = restarted.wait_for_port();
  ASSERT_GT(port, 0) << restarted.log();
  EXPECT_EQ(metric(metrics(port), "tandem:kv_tier_bytes_used", "disk"), 11 * 96 + 1024 * 1280);
  EXPECT_EQ(complete(port, fresh), expected_fresh);
  std::string page = wait_metric(port, "tandem:pd_prompt_tokens_computed_total", 30, "");
  EXPECT_EQ(metric(page, "tandem:kv_tier_hit_tokens_total", "disk"), kPrefix);
  EXPECT_EQ(metric(page, "tandem:pd_prompt_tokens_computed_total"), 30);
}

TEST_F(KvTiersServe, BadTierSettingsStopStartUp) {
  struct Case {
    std::string extra;
    std::string message;
  };
  std::vector<Case> cases = {
      {"max_local_disk_size: 0.01\nsave_decode_cache: True\n", "'save_decode_cache'"},
      {"max_local_disk_size: 0\n", "'max_local_disk_size' must be positive"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    test::ServeProcess server(
        serve_args(yaml("bad" + std::to_string(i) + ".yaml", cases[i].extra)));
    EXPECT_NE(server.wait_exit(), 0) << cases[i].extra;
    EXPECT_NE(server.log().find(cases[i].message), std::string::npos) << server.log();
  }
  // local_disk naming a regular file.
  std::ofstream(*root_ / "plain-file") << "x";
  fs::path p = *root_ / "file-disk.yaml";
  std::ofstream(p) << "local_cpu: False\nlocal_disk: \"file://" << (*root_ / "plain-file").string()
                   << "/\"\nmax_local_disk_size: 1\n";
  test::ServeProcess server(serve_args(p.string()));
  EXPECT_NE(server.wait_exit(), 0);
  EXPECT_NE(server.log().find("plain-file"), std::string::npos) << server.log();
}

}  // namespace
}  // namespace tandem
