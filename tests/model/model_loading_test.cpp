// Model directory loading: config.json parsing for every golden model, and error paths for
// malformed configs and safetensors files (each must name the file, key or tensor).
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/model_config.h"
#include "model/safetensors.h"
#include "model/weight_store.h"
#include "test_support.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// A safetensors file from a raw header string and a data section.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// Expects `fn` to throw a tandem::Error whose message holds every one of `parts`.
template <typename Fn>
void expect_error(Fn fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    FAIL() << "no error thrown";
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_THAT(e.what(), HasSubstr(p));
  }
}

class ModelLoadingTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("tandem-model"); }
  void TearDown() override { fs::remove_all(dir_); }
  void write_config(const std::string& json) { write_file(dir_ / "config.json", json); }
  fs::path dir_;
};

TEST(ModelConfig, LoadsEveryGoldenModel) {
  auto c = load_model_config(test::golden_model("stories260K"));
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{2});

  auto rope = load_model_config(test::golden_model("tiny-llama3-rope"));
  EXPECT_EQ(rope.rope.scaling, RopeScalingType::kLlama3);
  EXPECT_EQ(rope.rope.factor, 8.0);
  EXPECT_EQ(rope.rope.original_max_position, 8192);
  EXPECT_EQ(rope.dtype, DType::kBF16);

  auto qwen = load_model_config(test::golden_model("tiny-qwen2"));
  EXPECT_TRUE(qwen.qkv_bias);
  EXPECT_FLOAT_EQ(qwen.rms_norm_eps, 1e-6f);

  auto sharded = load_model_config(test::golden_model("tiny-llama-f16-sharded"));
  EXPECT_EQ(sharded.dtype, DType::kF16);
}

TEST(WeightStore, OpensSingleAndShardedCheckpoints) {
  auto single = WeightStore::open(test::golden_model("stories260K"));
  EXPECT_TRUE(single.has("model.embed_tokens.weight"));
  const auto& emb = single.get("model.embed_tokens.weight", {512, 64});
  EXPECT_EQ(emb.dtype, DType::kF32);
  auto sharded = WeightStore::open(test::golden_model("tiny-llama-f16-sharded"));
  EXPECT_GT(sharded.tensors().size(), 8u);
  for (const auto& [name, t] : sharded.tensors()) EXPECT_EQ(t->dtype, DType::kF16) << name;
}

TEST(WeightStore, WrongShapeNamesFileAndTensor) {
  auto store = WeightStore::open(test::golden_model("stories260K"));
  expect_error([&] { store.get("model.embed_tokens.weight", {64, 512}); },
               {"model.safetensors", "model.embed_tokens.weight", "[512, 64]"});
  expect_error([&] { store.get("no.such.tensor", {1}); }, {"missing tensor 'no.such.tensor'"});
}

TEST_F(ModelLoadingTest, MissingDirectoryAndConfig) {
  expect_error([&] { load_model_config(dir_ / "nope"); }, {"does not exist"});
  expect_error([&] { load_model_config(dir_); }, {"missing config.json"});
}

TEST_F(ModelLoadingTest, UnsupportedArchitecture) {
  write_config(R"({"model_type": "gpt2", "vocab_size": 10})");
  expect_error([&] { load_model_config(dir_); }, {"config.json", "gpt2", "unsupported"});
}

TEST_F(ModelLoadingTest, MalformedConfigValues) {
  const std::string base =
      R"("model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": 2, "num_attention_heads": 4)";
  write_config("{" + base + R"(, "vocab_size": -3})");
  expect_error([&] { load_model_config(dir_); }, {"config.json", "vocab_size", "-3"});
  write_config("{" + base + R"(, "vocab_size": 10, "num_key_value_heads": 3})");
  expect_error([&] { load_model_config(dir_); }, {"num_key_value_heads"});
  write_config("{" + base + R"(, "vocab_size": 10, "rope_scaling": {"rope_type": "yarn"}})");
  expect_error([&] { load_model_config(dir_); }, {"rope_scaling", "yarn"});
  write_config("{" + base + R"(, "vocab_size": 10, "torch_dtype": "int8"})");
  expect_error([&] { load_model_config(dir_); }, {"torch_dtype", "int8"});
  write_config("{" + base);
  expect_error([&] { load_model_config(dir_); }, {"config.json", "invalid JSON"});
  write_config("{" + base + R"(, "vocab_size": 10, "rope_theta": 1e999})");
  expect_error([&] { load_model_config(dir_); }, {"config.json", "invalid JSON", "overflow"});
}

TEST_F(ModelLoadingTest, MistralSlidingWindowCapsTheContext) {
  write_config(R"({"model_type": "mistral", "hidden_size": 64, "intermediate_size": 128,
                   "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10,
                   "max_position_embeddings": 32768, "sliding_window": 4096})");
  EXPECT_EQ(load_model_config(dir_).max_position_embeddings, 4096);
  write_config(R"({"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
                   "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10,
                   "max_position_embeddings": 32768, "sliding_window": 4096,
                   "use_sliding_window": false})");
  EXPECT_EQ(load_model_config(dir_).max_position_embeddings, 32768);
}

TEST_F(ModelLoadingTest, SafetensorsErrorsNameFileAndTensor) {
  auto path = dir_ / "model.safetensors";
  write_file(path, "abc");
  expect_error([&] { SafetensorsFile f(path); }, {"model.safetensors", "truncated"});
  // Header length pointing past the end of the file.
  std::string lying = safetensors_bytes("{}", "");
  lying[0] = char(0xff);
  write_file(path, lying);
  expect_error([&] { SafetensorsFile f(path); }, {"header length"});
  write_file(path, safetensors_bytes("{not json", ""));
  expect_error([&] { SafetensorsFile f(path); }, {"invalid safetensors header"});
  // A number beyond double's range: nlohmann reports it as out_of_range, not a parse error.
  write_file(path, safetensors_bytes(R"({"__metadata__": {"x": 1e999}})", ""));
  expect_error([&] { SafetensorsFile f(path); }, {"invalid safetensors header", "overflow"});
  write_file(path, safetensors_bytes(
                       R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                       std::string(8, '\0')));
  expect_error([&] { SafetensorsFile f(path); }, {"'w'", "outside", "truncated"});
  write_file(path, safetensors_bytes(
                       R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})",
                       std::string(16, '\0')));
  expect_error([&] { SafetensorsFile f(path); }, {"'w'", "do not match"});
  write_file(path, safetensors_bytes(
                       R"({"w": {"dtype": "I8", "shape": [4], "data_offsets": [0, 4]}})",
                       std::string(4, '\0')));
  expect_error([&] { SafetensorsFile f(path); }, {"'w'", "unsupported dtype 'I8'"});
  write_file(path, safetensors_bytes(
                       R"({"a": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]},
                           "b": {"dtype": "F16", "shape": [4], "data_offsets": [4, 12]}})",
                       std::string(12, '\0')));
  expect_error([&] { SafetensorsFile f(path); }, {"overlap"});
  write_file(path, safetensors_bytes(
                       R"({"w": {"dtype": "F16", "shape": [-4], "data_offsets": [0, 8]}})",
                       std::string(8, '\0')));
  expect_error([&] { SafetensorsFile f(path); }, {"'w'", "shape"});
}

TEST_F(ModelLoadingTest, ShardIndexErrors) {
  write_file(dir_ / "model.safetensors.index.json",
             R"({"weight_map": {"w": "model-00001-of-00002.safetensors"}})");
  expect_error([&] { WeightStore::open(dir_); }, {"model-00001-of-00002.safetensors", "missing"});
  write_file(dir_ / "model.safetensors.index.json", R"({"weight_map": {"w": "../etc/passwd"}})");
  expect_error([&] { WeightStore::open(dir_); }, {"not a plain file name"});
  fs::remove(dir_ / "model.safetensors.index.json");
  expect_error([&] { WeightStore::open(dir_); }, {"no model.safetensors"});
}

}  // namespace
}  // namespace tandem
