// The KV tiers inside a running engine (LlmEngine with a KvStoreConnector), on a small random
// model with a 2048-token context: a second prompt sharing a 1,000-token prefix computes only
// its new tokens and gives the same greedy tokens as an engine without tiers; the CPU tier
// serves a prefix the engine's own cache has evicted; the disk tier serves when the CPU tier is
// too small, and after a restart (a new engine on the same directory); 500 distinct prompts
// keep every tier within its size limit.
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "core/error.h"
#include "core/json_file.h"
#include "engine/llm_engine.h"
#include "engine/wait_for_stats.h"
#include "model/random_model_writer.h"
#include "test_support.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kChunk = 100;
constexpr int kPrefix = 1000;
constexpr int kMaxTokens = 6;
// stories260K's shape: 5 layers x 4 KV heads x head_dim 8, f32: 1,280 KV bytes per token.
constexpr uint64_t kTokenBytes = 2 * 5 * 4 * 8 * 4;
constexpr uint64_t kBlockBytes = 16 * kTokenBytes;

// stories260K's shape and tokenizer with a 2048-token context and random weights.
const fs::path& model_dir() {
  static const fs::path dir = [] {
    fs::path out = test::make_temp_dir("tandem-kv-tiers-model");
    nlohmann::json config = read_json_file(test::golden_model("stories260K") / "config.json");
    config["max_position_embeddings"] = 2048;
    RandomModelOptions o;
    o.dtype = DType::kF32;
    o.seed = 7;
    o.num_threads = 1;
    o.tokenizer_dir = test::golden_model("stories260K");
    write_random_model(out, config, nlohmann::json(), o, "kv tiers test model");
    return out;
  }();
  return dir;
}

std::vector<int32_t> tokens_of(int length, int seed) {
  std::vector<int32_t> ids;
  for (int i = 0; i < length; ++i) ids.push_back(int32_t(3 + (i * 131 + seed * 977) % 500));
  return ids;
}

// BOS, the shared 1,000-token prefix (starting with BOS), then `suffix_len` tokens of `seed`.
std::vector<int32_t> prompt_with_prefix(int suffix_len, int seed) {
  std::vector<int32_t> ids = tokens_of(kPrefix, 0);
  ids[0] = 1;
  for (int32_t t : tokens_of(suffix_len, seed)) ids.push_back(t);
  return ids;
}

struct Tiers {
  uint64_t cpu_bytes = 0;
  std::optional<fs::path> disk_dir;
  uint64_t disk_bytes = 0;
  int chunk_size = kChunk;
};

Tiers cpu_tier(uint64_t bytes) {
  Tiers t;
  t.cpu_bytes = bytes;
  return t;
}

Tiers cpu_and_disk(uint64_t cpu_bytes, const fs::path& dir, uint64_t disk_bytes,
                   int chunk_size = kChunk) {
  Tiers t;
  t.cpu_bytes = cpu_bytes;
  t.disk_dir = dir;
  t.disk_bytes = disk_bytes;
  t.chunk_size = chunk_size;
  return t;
}

EngineConfig engine_config(std::optional<Tiers> tiers, bool prefix_caching,
                           uint64_t kv_bytes = 8 << 20) {
  EngineConfig c;
  c.model_dir = model_dir();
  c.num_threads = 1;
  c.kv_cache_memory_bytes = kv_bytes;
  c.enable_prefix_caching = prefix_caching;
  if (tiers) {
    KvStoreConfig k;
    k.chunk_size = tiers->chunk_size;
    k.store.cpu_bytes = tiers->cpu_bytes;
    k.store.disk_dir = tiers->disk_dir;
    k.store.disk_bytes = tiers->disk_bytes;
    c.kv_store = k;
  }
  return c;
}

std::vector<int32_t> run(LlmEngine& engine, const std::string& id,
                         const std::vector<int32_t>& prompt, int max_tokens = kMaxTokens) {
  EngineRequest r;
  r.request_id = id;
  r.prompt_ids = prompt;
  r.params.temperature = 0;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  auto stream = std::make_shared<RequestStream>();
  engine.add_request(std::move(r), stream);
  std::vector<int32_t> tokens;
  for (auto deadline = Clock::now() + 60s; Clock::now() < deadline;) {
    auto o = stream->pop(100ms);
    if (!o) continue;
    tokens.insert(tokens.end(), o->new_token_ids.begin(), o->new_token_ids.end());
    EXPECT_TRUE(o->error.empty()) << o->error;
    if (o->finish != FinishReason::kNone) return tokens;
  }
  ADD_FAILURE() << "request " << id << " did not finish";
  return tokens;
}

// Disk writes finish in the background: a longer wait than the transfer tests'.
EngineStats wait_stats(const LlmEngine& engine,
                       const std::function<bool(const EngineStats&)>& ready) {
  return test::wait_for_stats(engine, ready, 20s);
}

// Greedy tokens of `prompt` from an engine without tiers.
std::vector<int32_t> reference(const std::vector<int32_t>& prompt) {
  LlmEngine plain(engine_config(std::nullopt, false));
  plain.start();
  return run(plain, "reference", prompt);
}

class KvTiersEngine : public testing::Test {
 protected:
  void SetUp() override { disk_ = test::make_temp_dir("tandem-kv-tiers-disk"); }
  void TearDown() override { fs::remove_all(disk_); }

  fs::path disk_;
};

TEST_F(KvTiersEngine, SharedPrefixComputesOnlyTheNewTokens) {
  const auto first = prompt_with_prefix(20, 1), second = prompt_with_prefix(24, 2);
  const auto expected = reference(second);
  LlmEngine engine(engine_config(cpu_tier(64 << 20), /*prefix_caching=*/false));
  engine.start();
  run(engine, "first", first);
  EngineStats before = wait_stats(
      engine, [&](const EngineStats& s) { return s.prompt_tokens_computed == first.size(); });
  EXPECT_EQ(before.prompt_tokens_computed, first.size());
  EXPECT_EQ(before.kv_transfer.tiers.cpu.stored_tokens, first.size());
  EXPECT_EQ(run(engine, "second", second), expected);
  EngineStats after = wait_stats(engine, [&](const EngineStats& s) {
    return s.prompt_tokens_computed > before.prompt_tokens_computed;
  });
  EXPECT_EQ(after.prompt_tokens_computed - before.prompt_tokens_computed, 24u);
  EXPECT_EQ(after.kv_transfer.tiers.cpu.hit_tokens, uint64_t(kPrefix));
  EXPECT_FALSE(after.kv_transfer.tiers.disk_enabled);
}

TEST_F(KvTiersEngine, CpuTierServesWhatThePrefixCacheEvicted) {
  const auto first = prompt_with_prefix(20, 1), second = prompt_with_prefix(24, 2);
  const auto expected = reference(second);
  // Room for exactly one sequence (65 blocks): the next prompt's blocks evict every block of
  // the prefix from the engine's cache.
  LlmEngine engine(engine_config(cpu_tier(64 << 20), /*prefix_caching=*/true,
                                 /*kv_bytes=*/65 * kBlockBytes));
  engine.start();
  run(engine, "first", first);
  std::vector<int32_t> other = tokens_of(1030, 5);
  other[0] = 1;
  run(engine, "other", other);
  EngineStats before = wait_stats(engine, [&](const EngineStats& s) {
    return s.prompt_tokens_computed == first.size() + other.size();
  });
  EXPECT_EQ(run(engine, "second", second), expected);
  EngineStats after = wait_stats(engine, [&](const EngineStats& s) {
    return s.prompt_tokens_computed > before.prompt_tokens_computed;
  });
  EXPECT_EQ(after.prefix_cache_hits, before.prefix_cache_hits);  // the engine had nothing
  EXPECT_EQ(after.kv_transfer.tiers.cpu.hit_tokens, uint64_t(kPrefix));
  EXPECT_EQ(after.prompt_tokens_computed - before.prompt_tokens_computed, 24u);
}

TEST_F(KvTiersEngine, DiskTierServesWhenTheCpuTierIsTooSmall) {
  const auto first = prompt_with_prefix(20, 1), second = prompt_with_prefix(24, 2);
  const auto expected = reference(second);
  // The CPU tier is smaller than one full chunk (100 tokens x 1,280 bytes).
  Tiers tiers = cpu_and_disk(100'000, disk_, 16 << 20);
  LlmEngine engine(engine_config(tiers, /*prefix_caching=*/false));
  engine.start();
  run(engine, "first", first);
  EngineStats before = wait_stats(engine, [&](const EngineStats& s) {
    return s.kv_transfer.tiers.disk.stored_tokens == first.size();
  });
  EXPECT_EQ(before.kv_transfer.tiers.disk.stored_tokens, first.size());
  EXPECT_EQ(run(engine, "second", second), expected);
  EngineStats after = wait_stats(engine, [&](const EngineStats& s) {
    return s.prompt_tokens_computed > before.prompt_tokens_computed;
  });
  EXPECT_EQ(after.kv_transfer.tiers.disk.hit_tokens, uint64_t(kPrefix));
  EXPECT_EQ(after.kv_transfer.tiers.cpu.hit_tokens, 0u);
  EXPECT_EQ(after.prompt_tokens_computed - before.prompt_tokens_computed, 24u);
}

TEST_F(KvTiersEngine, DiskTierServesAfterARestart) {
  const auto first = prompt_with_prefix(20, 1), second = prompt_with_prefix(24, 2);
  const auto expected = reference(second);
  Tiers tiers = cpu_and_disk(64 << 20, disk_, 16 << 20);
  {
    LlmEngine engine(engine_config(tiers, /*prefix_caching=*/true));
    engine.start();
    run(engine, "first", first);
  }  // the engine stops: its queued disk writes finish first
  LlmEngine restarted(engine_config(tiers, /*prefix_caching=*/true));
  restarted.start();
  EXPECT_EQ(restarted.stats().kv_transfer.tiers.disk.bytes_used,
            11 * 96 + first.size() * kTokenBytes);  // 11 files (10 full chunks + 20 tokens)
  EXPECT_EQ(run(restarted, "second", second), expected);
  EngineStats after =
      wait_stats(restarted, [&](const EngineStats& s) { return s.prompt_tokens_computed > 0; });
  EXPECT_EQ(after.kv_transfer.tiers.disk.hit_tokens, uint64_t(kPrefix));
  EXPECT_EQ(after.prompt_tokens_computed, 24u);
}

TEST_F(KvTiersEngine, FiveHundredDistinctPromptsStayWithinEveryTier) {
  // 16-token chunks of 20,480 bytes: the CPU tier holds 3, the disk tier 9 (with headers).
  const uint64_t cpu_limit = 3 * 16 * kTokenBytes, disk_limit = 9 * (96 + 16 * kTokenBytes);
  Tiers tiers = cpu_and_disk(cpu_limit, disk_, disk_limit, /*chunk_size=*/16);
  auto owned = std::make_unique<LlmEngine>(
      engine_config(tiers, /*prefix_caching=*/true, /*kv_bytes=*/1 << 20));
  LlmEngine& engine = *owned;
  engine.start();
  for (int i = 0; i < 500; ++i) {
    std::vector<int32_t> prompt = tokens_of(40, 100 + i);
    prompt[0] = 1;
    prompt[1] = int32_t(3 + i % 500);  // distinct from the second token on
    const std::string id = fmt::format("p{}", i);
    ASSERT_EQ(run(engine, id, prompt, /*max_tokens=*/1).size(), 1u);
    KvTierStats s = engine.stats().kv_transfer.tiers;
    ASSERT_LE(s.cpu.bytes_used, cpu_limit) << "after prompt " << i;
    ASSERT_LE(s.disk.bytes_used, disk_limit) << "after prompt " << i;
  }
  KvTierStats s = wait_stats(engine, [](const EngineStats& st) {
                    return st.kv_transfer.tiers.disk.stored_tokens > 0;
                  }).kv_transfer.tiers;
  EXPECT_GT(s.cpu.evictions, 1000u);
  EXPECT_GT(s.disk.evictions + s.disk.dropped_writes, 0u);
  EXPECT_GT(s.cpu.bytes_used, 0u);
  // The files themselves, once the engine and its disk writer are gone (a listing taken while
  // the writer evicts and writes is no snapshot: it may see a file already unlinked and its
  // successor).
  owned.reset();
  uint64_t on_disk = 0;
  for (const auto& e : fs::directory_iterator(disk_)) on_disk += e.file_size();
  EXPECT_LE(on_disk, disk_limit);
  EXPECT_GT(on_disk, 0u);
}

}  // namespace
}  // namespace tandem
