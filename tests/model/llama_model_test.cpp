// LlamaModel's error paths: every malformed ForwardBatch is rejected with a message naming the
// field (and the KV cache is left untouched), and a checkpoint with a misshapen or missing
// tensor fails to load with a message naming the tensor and file.
#include "model/llama_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"
#include "core/thread_pool.h"
#include "test_support.h"

namespace tandem {
namespace {

constexpr int kBlockSize = 16;

// A valid two-sequence batch for stories260K: a 3-token prefill in block 5, and one decode token
// at position 17 of a sequence living in blocks 2 and 7.
ForwardBatch valid_batch() {
  ForwardBatch b;
  b.token_ids = {1, 20, 30, 40};
  b.positions = {0, 1, 2, 17};
  b.slot_mapping = {5 * kBlockSize, 5 * kBlockSize + 1, 5 * kBlockSize + 2, 7 * kBlockSize + 1};
  b.query_start = {0, 3, 4};
  b.context_lens = {3, 18};
  b.max_blocks_per_seq = 2;
  b.block_tables = {5, -1, 2, 7};
  b.logits_indices = {2, 3};
  return b;
}

class LlamaModelErrors : public ::testing::Test {
 protected:
  void expect_rejected(const std::function<void(ForwardBatch&)>& mutate, const std::string& text) {
    ForwardBatch b = valid_batch();
    mutate(b);
    std::vector<float> logits(b.logits_indices.size() * 512);
    try {
      model_.forward(b, kv_, logits.data());
      ADD_FAILURE() << "accepted a batch that should fail with: " << text;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr(text));
    }
    for (int layer = 0; layer < kv_.shape().num_layers; ++layer) {
      const float* k = kv_.k(layer);
      for (int64_t i = 0; i < kv_.shape().layer_floats(); ++i)
        ASSERT_EQ(k[i], 0.0f) << "a rejected batch wrote the cache (" << text << ")";
    }
  }

  ThreadPool pool_{2};
  LlamaModel model_{test::golden_model("stories260K"), &pool_};
  KvCache kv_{model_.kv_cache_shape(/*num_blocks=*/8, kBlockSize)};
};

TEST_F(LlamaModelErrors, AcceptsTheValidBatch) {
  ForwardBatch b = valid_batch();
  std::vector<float> logits(2 * 512, NAN);
  model_.forward(b, kv_, logits.data());
  for (float x : logits) ASSERT_TRUE(std::isfinite(x));
}

TEST_F(LlamaModelErrors, RejectsMalformedBatches) {
  expect_rejected([](ForwardBatch& b) { b = ForwardBatch{}; }, "no tokens");
  expect_rejected([](ForwardBatch& b) { b.token_ids[1] = 512; }, "token id 512 at row 1");
  expect_rejected([](ForwardBatch& b) { b.token_ids[0] = -1; }, "token id -1");
  expect_rejected([](ForwardBatch& b) { b.positions.pop_back(); }, "positions");
  expect_rejected([](ForwardBatch& b) { b.positions[1] = 2; }, "row 1 (sequence 0) has position 2");
  expect_rejected([](ForwardBatch& b) { b.slot_mapping[3] = 2 * kBlockSize + 1; }, "has slot 33");
  expect_rejected([](ForwardBatch& b) { b.query_start = {0, 0, 4}; }, "query_start[0..1] = 0..0");
  expect_rejected([](ForwardBatch& b) { b.query_start = {0, 5, 4}; }, "query_start");
  expect_rejected([](ForwardBatch& b) { b.query_start.back() = 3; }, "query_start");
  expect_rejected([](ForwardBatch& b) { b.context_lens.pop_back(); }, "context_lens");
  expect_rejected([](ForwardBatch& b) { b.context_lens[0] = 2; }, "3 new tokens but context_len 2");
  expect_rejected([](ForwardBatch& b) { b.context_lens[1] = 33; }, "exceeds its block table");
  expect_rejected([](ForwardBatch& b) { b.block_tables[3] = 8; }, "block_tables[1] = 8");
  expect_rejected([](ForwardBatch& b) { b.block_tables.pop_back(); }, "block table entries");
  expect_rejected([](ForwardBatch& b) { b.logits_indices.push_back(4); }, "logits_indices[2] = 4");
}

TEST_F(LlamaModelErrors, RejectsPositionsBeyondTheModelsContext) {
  KvCache big(model_.kv_cache_shape(40, kBlockSize));
  ForwardBatch b;
  b.token_ids = {7};
  b.positions = {512};  // stories260K: max_position_embeddings = 512
  b.slot_mapping = {32 * kBlockSize};
  b.query_start = {0, 1};
  b.context_lens = {513};
  b.max_blocks_per_seq = 33;
  for (int i = 0; i < 33; ++i) b.block_tables.push_back(i);
  b.logits_indices = {0};
  std::vector<float> logits(512);
  EXPECT_THROW(model_.forward(b, big, logits.data()), Error);
}

TEST_F(LlamaModelErrors, RejectsAKvCacheOfAnotherShape) {
  KvCache wrong(KvCacheShape{5, 8, kBlockSize, /*num_kv_heads=*/8, /*head_dim=*/8});
  ForwardBatch b = valid_batch();
  std::vector<float> logits(2 * 512);
  EXPECT_THROW(model_.forward(b, wrong, logits.data()), Error);
}

// Writes `tensors` (name -> (dtype, shape, bytes)) as a .safetensors file.
struct RawTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
void write_raw_safetensors(const std::filesystem::path& path,
                           const std::map<std::string, RawTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<uint8_t> data;
  for (const auto& [name, t] : tensors) {
    header[name] = {{"dtype", t.dtype},
                    {"shape", t.shape},
                    {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data.insert(data.end(), t.bytes.begin(), t.bytes.end());
  }
  const std::string h = header.dump();
  const uint64_t len = h.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(h.data(), std::streamsize(h.size()));
  out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}

// stories260K's tensors with `edit` applied and its config.json with `config_patch` merged in,
// written to a temp dir.
std::filesystem::path edited_stories(
    const std::function<void(std::map<std::string, RawTensor>&)>& edit,
    const nlohmann::json& config_patch = nlohmann::json::object()) {
  const auto src = test::golden_model("stories260K");
  const WeightStore ws = WeightStore::open(src);
  std::map<std::string, RawTensor> tensors;
  for (const auto& [name, ref] : ws.tensors()) {
    const auto* p = static_cast<const uint8_t*>(ref->data);
    tensors[name] = {std::string(dtype_name(ref->dtype)), ref->shape, {p, p + ref->nbytes}};
  }
  edit(tensors);
  const auto dir = test::make_temp_dir("tandem-llama-model");
  nlohmann::json config = read_json_file(src / "config.json");
  config.merge_patch(config_patch);
  std::ofstream(dir / "config.json") << config.dump();
  write_raw_safetensors(dir / "model.safetensors", tensors);
  return dir;
}

TEST(LlamaModelLoading, MisshapenTensorIsNamedWithItsFile) {
  const auto dir = edited_stories([](auto& t) {
    auto& k = t.at("model.layers.2.self_attn.k_proj.weight");  // (32, 64) -> (64, 32)
    std::swap(k.shape[0], k.shape[1]);
  });
  try {
    LlamaModel model(dir, nullptr);
    ADD_FAILURE() << "loaded a misshapen checkpoint";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("model.layers.2.self_attn.k_proj.weight"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("model.safetensors"));
  }
  std::filesystem::remove_all(dir);
}

TEST(LlamaModelLoading, MissingTensorIsNamed) {
  const auto dir = edited_stories([](auto& t) { t.erase("model.layers.4.mlp.down_proj.weight"); });
  try {
    LlamaModel model(dir, nullptr);
    ADD_FAILURE() << "loaded a checkpoint without a tensor";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("model.layers.4.mlp.down_proj.weight"));
  }
  std::filesystem::remove_all(dir);
}

// Last-position logits (vocab) of a fixed 5-token prompt.
std::vector<float> prompt_logits(LlamaModel& model) {
  KvCache kv(model.kv_cache_shape(4, kBlockSize));
  ForwardBatch b;
  b.token_ids = {1, 403, 407, 261, 378};
  b.positions = {0, 1, 2, 3, 4};
  b.slot_mapping = {16, 17, 18, 19, 20};
  b.query_start = {0, 5};
  b.context_lens = {5};
  b.max_blocks_per_seq = 1;
  b.block_tables = {1};
  b.logits_indices = {4};
  std::vector<float> logits(size_t(model.config().vocab_size));
  model.forward(b, kv, logits.data());
  return logits;
}

// Llama's attention_bias adds biases to q, k, v and o: zero ones change nothing, a missing one
// is named, and a non-zero o_proj bias changes the logits.
TEST(LlamaModelLoading, LlamaAttentionBiasCoversQkvAndO) {
  const nlohmann::json patch = {{"attention_bias", true}};
  const auto add_biases = [](float value) {
    return [value](std::map<std::string, RawTensor>& t) {
      for (int layer = 0; layer < 5; ++layer) {
        const std::string p = "model.layers." + std::to_string(layer) + ".self_attn.";
        for (auto [proj, n] : {std::pair{"q", 64}, {"k", 32}, {"v", 32}, {"o", 64}}) {
          std::vector<float> bias(size_t(n), std::string(proj) == "o" ? value : 0.0f);
          const auto* bytes = reinterpret_cast<const uint8_t*>(bias.data());
          t[p + proj + "_proj.bias"] = {"F32", {n}, {bytes, bytes + 4 * n}};
        }
      }
    };
  };
  LlamaModel base(test::golden_model("stories260K"), nullptr);
  const auto want = prompt_logits(base);
  const auto zero_dir = edited_stories(add_biases(0.0f), patch);
  LlamaModel zero(zero_dir, nullptr);
  EXPECT_EQ(prompt_logits(zero), want);
  const auto shifted_dir = edited_stories(add_biases(0.5f), patch);
  LlamaModel shifted(shifted_dir, nullptr);
  EXPECT_NE(prompt_logits(shifted), want);
  const auto missing_dir = edited_stories(
      [&](auto& t) {
        add_biases(0.0f)(t);
        t.erase("model.layers.3.self_attn.o_proj.bias");
      },
      patch);
  try {
    LlamaModel model(missing_dir, nullptr);
    ADD_FAILURE() << "loaded a checkpoint without o_proj.bias";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("model.layers.3.self_attn.o_proj.bias"));
  }
  for (const auto& dir : {zero_dir, shifted_dir, missing_dir}) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tandem
