// Tests of the make-model library: preset configs, config parsing and its errors, the tensor
// list, and write_random_model's files (checked against the golden transformers checkpoints:
// same header, same shard plan), weight statistics, determinism, sharding and tokenizer copy.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "core/error.h"
#include "core/json_file.h"
#include "core/thread_pool.h"
#include "kv/kv_cache.h"
#include "model/llama_model.h"
#include "model/model_config.h"
#include "model/model_presets.h"
#include "model/random_model_writer.h"
#include "model/weight_store.h"
#include "parsed_safetensors.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::parse_safetensors;
using ::testing::HasSubstr;

// A 2-layer llama small enough to write in milliseconds.
json tiny_config() {
  return {{"model_type", "llama"},          {"vocab_size", 96},       {"hidden_size", 64},
          {"intermediate_size", 96},        {"num_hidden_layers", 2}, {"num_attention_heads", 4},
          {"num_key_value_heads", 2},       {"rms_norm_eps", 1e-5},   {"rope_theta", 10000.0},
          {"max_position_embeddings", 256}, {"bos_token_id", 1},      {"eos_token_id", 2}};
}

int64_t count_parameters(const json& config) {
  int64_t n = 0;
  for (const auto& spec : random_tensor_specs(parse_model_shape(config, "test"))) {
    int64_t numel = 1;
    for (int64_t d : spec.shape) numel *= d;
    n += numel;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Presets

TEST(ModelPresets, Llama32_1B) {
  ModelPreset p = model_preset("llama-3.2-1b");
  const json& c = p.config;
  EXPECT_EQ(c["model_type"], "llama");
  EXPECT_EQ(c["architectures"], json({"LlamaForCausalLM"}));
  EXPECT_EQ(c["vocab_size"], 128256);
  EXPECT_EQ(c["hidden_size"], 2048);
  EXPECT_EQ(c["intermediate_size"], 8192);
  EXPECT_EQ(c["num_hidden_layers"], 16);
  EXPECT_EQ(c["num_attention_heads"], 32);
  EXPECT_EQ(c["num_key_value_heads"], 8);
  EXPECT_EQ(c["head_dim"], 64);
  EXPECT_EQ(c["rope_theta"], 500000.0);
  EXPECT_EQ(c["rope_scaling"], json({{"rope_type", "llama3"},
                                     {"factor", 32.0},
                                     {"low_freq_factor", 1.0},
                                     {"high_freq_factor", 4.0},
                                     {"original_max_position_embeddings", 8192}}));
  EXPECT_EQ(c["rms_norm_eps"], 1e-5);
  EXPECT_EQ(c["tie_word_embeddings"], true);
  EXPECT_EQ(c["max_position_embeddings"], 131072);
  EXPECT_EQ(c["bos_token_id"], 128000);
  EXPECT_EQ(c["eos_token_id"], json({128001, 128008, 128009}));
  EXPECT_EQ(c["attention_bias"], false);
  EXPECT_EQ(p.generation_config["eos_token_id"], json({128001, 128008, 128009}));
  EXPECT_EQ(p.generation_config["temperature"], 0.6);
  EXPECT_EQ(p.generation_config["top_p"], 0.9);
  // Llama-3.2-1B's published parameter count.
  EXPECT_EQ(count_parameters(c), 1'235'814'400);
}

TEST(ModelPresets, Llama31_8B) {
  ModelPreset p = model_preset("llama-3.1-8b");
  const json& c = p.config;
  EXPECT_EQ(c["model_type"], "llama");
  EXPECT_EQ(c["vocab_size"], 128256);
  EXPECT_EQ(c["hidden_size"], 4096);
  EXPECT_EQ(c["intermediate_size"], 14336);
  EXPECT_EQ(c["num_hidden_layers"], 32);
  EXPECT_EQ(c["num_attention_heads"], 32);
  EXPECT_EQ(c["num_key_value_heads"], 8);
  EXPECT_EQ(c["head_dim"], 128);
  EXPECT_EQ(c["rope_theta"], 500000.0);
  EXPECT_EQ(c["rope_scaling"]["rope_type"], "llama3");
  EXPECT_EQ(c["rope_scaling"]["factor"], 8.0);
  EXPECT_EQ(c["rope_scaling"]["low_freq_factor"], 1.0);
  EXPECT_EQ(c["rope_scaling"]["high_freq_factor"], 4.0);
  EXPECT_EQ(c["rope_scaling"]["original_max_position_embeddings"], 8192);
  EXPECT_EQ(c["tie_word_embeddings"], false);
  EXPECT_EQ(c["max_position_embeddings"], 131072);
  EXPECT_EQ(c["bos_token_id"], 128000);
  EXPECT_EQ(c["eos_token_id"], json({128001, 128008, 128009}));
  // Llama-3.1-8B's published parameter count.
  EXPECT_EQ(count_parameters(c), 8'030'261'248);
}

TEST(ModelPresets, UnknownNamesAndBadFiles) {
  EXPECT_THAT([] { (void)model_preset("llama-9"); },
              ::testing::ThrowsMessage<Error>(
                  HasSubstr("unknown model preset 'llama-9' (known: llama-3.1-8b, llama-3.2-1b)")));
  EXPECT_THAT([] { (void)load_model_preset_or_file("llama-9"); },
              ::testing::ThrowsMessage<Error>(HasSubstr(
                  "'llama-9' is neither a model preset (llama-3.1-8b, llama-3.2-1b) nor an "
                  "existing config file")));
  fs::path dir = test::make_temp_dir("tandem-presets");
  std::ofstream(dir / "broken.json") << "{\"model_type\": ";
  std::ofstream(dir / "array.json") << "[1, 2]";
  EXPECT_THAT([&] { (void)load_model_preset_or_file((dir / "broken.json").string()); },
              ::testing::ThrowsMessage<Error>(
                  HasSubstr((dir / "broken.json").string() + ": invalid JSON")));
  EXPECT_THAT([&] { (void)load_model_preset_or_file((dir / "array.json").string()); },
              ::testing::ThrowsMessage<Error>(HasSubstr("expected a JSON object, got array")));
  std::ofstream(dir / "ok.json") << tiny_config().dump();
  ModelPreset file = load_model_preset_or_file((dir / "ok.json").string());
  EXPECT_EQ(file.name, (dir / "ok.json").string());
  EXPECT_EQ(file.config, tiny_config());
  EXPECT_TRUE(file.generation_config.is_null());
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Config parsing and the tensor list

TEST(ModelShape, DefaultsAndBiases) {
  json c = tiny_config();
  c.erase("num_key_value_heads");
  ModelShape s = parse_model_shape(c, "cfg");
  EXPECT_EQ(s.num_kv_heads, 4);
  EXPECT_EQ(s.head_dim, 16);
  EXPECT_FALSE(s.tie_word_embeddings);
  EXPECT_FALSE(s.qkv_bias);
  EXPECT_FALSE(s.o_bias);

  c["model_type"] = "qwen2";
  s = parse_model_shape(c, "cfg");
  EXPECT_TRUE(s.qkv_bias);
  EXPECT_FALSE(s.o_bias);

  c["model_type"] = "llama";
  c["attention_bias"] = true;
  c["head_dim"] = 32;  // head_dim need not be hidden_size / num_heads
  s = parse_model_shape(c, "cfg");
  EXPECT_TRUE(s.qkv_bias);
  EXPECT_TRUE(s.o_bias);
  EXPECT_EQ(s.head_dim, 32);

  c["model_type"] = "mistral";  // transformers' Mistral has no attention biases
  s = parse_model_shape(c, "cfg");
  EXPECT_FALSE(s.qkv_bias);
  EXPECT_FALSE(s.o_bias);
}

TEST(ModelShape, ErrorsNameTheSourceAndKey) {
  struct Case {
    std::function<void(json&)> edit;
    std::string message;
  };
  std::vector<Case> cases = {
      {[](json& c) { c.erase("hidden_size"); }, "cfg.json: missing key 'hidden_size'"},
      {[](json& c) { c.erase("model_type"); }, "cfg.json: missing key 'model_type'"},
      {[](json& c) { c["model_type"] = "gpt2"; },
       "cfg.json: key 'model_type' = \"gpt2\" is not supported (llama, mistral, qwen2)"},
      {[](json& c) { c["vocab_size"] = "96"; },
       "cfg.json: key 'vocab_size' must be an integer, got \"96\""},
      {[](json& c) { c["num_hidden_layers"] = 0; },
       "cfg.json: key 'num_hidden_layers' = 0 is out of range [1, 4096]"},
      {[](json& c) { c["hidden_size"] = -64; },
       "cfg.json: key 'hidden_size' = -64 is out of range"},
      {[](json& c) { c["intermediate_size"] = 18446744073709551615ULL; },
       "cfg.json: key 'intermediate_size' = 18446744073709551615 is out of range"},
      {[](json& c) { c["num_key_value_heads"] = 3; },
       "cfg.json: num_attention_heads 4 is not a multiple of num_key_value_heads 3"},
      {[](json& c) { c["hidden_size"] = 66; },
       "cfg.json: missing key 'head_dim', and hidden_size 66 is not a multiple of "
       "num_attention_heads 4"},
      {[](json& c) { c["tie_word_embeddings"] = "yes"; },
       "cfg.json: key 'tie_word_embeddings' must be true or false, got \"yes\""},
      {[](json& c) { c["mlp_bias"] = true; }, "cfg.json: key 'mlp_bias' = true is not supported"},
  };
  for (const auto& c : cases) {
    json config = tiny_config();
    c.edit(config);
    EXPECT_THAT([&] { (void)parse_model_shape(config, "cfg.json"); },
                ::testing::ThrowsMessage<Error>(HasSubstr(c.message)));
  }
  EXPECT_THAT([] { (void)parse_model_shape(json::array(), "cfg.json"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("cfg.json: expected a JSON object")));
}

TEST(ModelShape, ConfigDtype) {
  json c = tiny_config();
  EXPECT_EQ(config_dtype(c, "cfg"), std::nullopt);
  c["dtype"] = "float16";  // transformers 5 spelling
  EXPECT_EQ(config_dtype(c, "cfg"), DType::kF16);
  c["torch_dtype"] = "float32";  // transformers 4 spelling wins
  EXPECT_EQ(config_dtype(c, "cfg"), DType::kF32);
  c["torch_dtype"] = "bfloat16";
  EXPECT_EQ(config_dtype(c, "cfg"), DType::kBF16);
  c["torch_dtype"] = "int8";
  EXPECT_THAT(
      [&] { (void)config_dtype(c, "cfg"); },
      ::testing::ThrowsMessage<Error>(HasSubstr(
          "cfg: key 'torch_dtype' = \"int8\" is not supported (bfloat16, float16, float32)")));
}

TEST(RandomTensorSpecs, HuggingFaceNamesShapesAndScales) {
  json c = tiny_config();
  c["attention_bias"] = true;
  auto specs = random_tensor_specs(parse_model_shape(c, "cfg"));
  std::vector<std::string> names;
  for (const auto& s : specs) names.push_back(s.name);
  std::vector<std::string> expected = {"model.embed_tokens.weight"};
  for (int l = 0; l < 2; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      expected.push_back(p + "self_attn." + proj + ".weight");
      expected.push_back(p + "self_attn." + proj + ".bias");
    }
    for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) {
      expected.push_back(p + "mlp." + proj + ".weight");
    }
    expected.push_back(p + "input_layernorm.weight");
    expected.push_back(p + "post_attention_layernorm.weight");
  }
  expected.push_back("model.norm.weight");
  expected.push_back("lm_head.weight");
  EXPECT_EQ(names, expected);

  std::map<std::string, const RandomTensorSpec*> by_name;
  for (const auto& s : specs) by_name[s.name] = &s;
  auto shape = [&](const std::string& n) { return by_name.at(n)->shape; };
  EXPECT_EQ(shape("model.embed_tokens.weight"), std::vector<int64_t>({96, 64}));
  EXPECT_EQ(shape("model.layers.1.self_attn.q_proj.weight"), std::vector<int64_t>({64, 64}));
  EXPECT_EQ(shape("model.layers.1.self_attn.k_proj.weight"), std::vector<int64_t>({32, 64}));
  EXPECT_EQ(shape("model.layers.1.self_attn.v_proj.bias"), std::vector<int64_t>({32}));
  EXPECT_EQ(shape("model.layers.1.self_attn.o_proj.weight"), std::vector<int64_t>({64, 64}));
  EXPECT_EQ(shape("model.layers.0.mlp.gate_proj.weight"), std::vector<int64_t>({96, 64}));
  EXPECT_EQ(shape("model.layers.0.mlp.down_proj.weight"), std::vector<int64_t>({64, 96}));
  EXPECT_EQ(shape("model.norm.weight"), std::vector<int64_t>({64}));
  EXPECT_EQ(shape("lm_head.weight"), std::vector<int64_t>({96, 64}));

  EXPECT_EQ(by_name.at("model.norm.weight")->init, WeightInit::kOnes);
  EXPECT_EQ(by_name.at("lm_head.weight")->stddev, 0.02f);
  EXPECT_FLOAT_EQ(by_name.at("model.layers.0.mlp.down_proj.weight")->stddev, 0.02f / 2.0f);
  EXPECT_FLOAT_EQ(by_name.at("model.layers.1.self_attn.o_proj.weight")->stddev, 0.01f);

  c["tie_word_embeddings"] = true;
  auto tied = random_tensor_specs(parse_model_shape(c, "cfg"));
  EXPECT_EQ(tied.size(), specs.size() - 1);
  EXPECT_EQ(tied.back().name, "model.norm.weight");
}

// ---------------------------------------------------------------------------------------------
// Writing models

class WriteRandomModel : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("tandem-make-model"); }
  void TearDown() override { fs::remove_all(dir_); }

  RandomModelSummary write(const fs::path& out, const json& config, RandomModelOptions options) {
    return write_random_model(out, config, json(), options, "test-config");
  }
  static std::set<std::string> files_in(const fs::path& dir) {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
    return names;
  }
  fs::path dir_;
};

TEST_F(WriteRandomModel, WritesConfigsAndEveryTensor) {
  json config = tiny_config();
  config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};  // passed through as is
  auto summary = write(dir_ / "m", config, {});
  EXPECT_EQ(files_in(dir_ / "m"),
            std::set<std::string>({"config.json", "generation_config.json", "model.safetensors"}));
  EXPECT_EQ(summary.weight_files, std::vector<std::string>({"model.safetensors"}));
  EXPECT_EQ(summary.dtype, DType::kBF16);
  EXPECT_FALSE(summary.has_tokenizer);

  json written = read_json_file(dir_ / "m" / "config.json");
  json expected = config;
  expected["architectures"] = {"LlamaForCausalLM"};
  expected["head_dim"] = 16;
  expected["tie_word_embeddings"] = false;
  expected["torch_dtype"] = "bfloat16";
  expected["dtype"] = "bfloat16";
  EXPECT_EQ(written, expected);
  EXPECT_EQ(read_json_file(dir_ / "m" / "generation_config.json"),
            json({{"_from_model_config", true}, {"bos_token_id", 1}, {"eos_token_id", 2}}));

  auto st = parse_safetensors(dir_ / "m" / "model.safetensors");
  auto specs = random_tensor_specs(parse_model_shape(config, "cfg"));
  EXPECT_EQ(st.header.size(), specs.size() + 1);
  uint64_t total = 0;
  for (const auto& spec : specs) {
    ASSERT_TRUE(st.header.contains(spec.name)) << spec.name;
    EXPECT_EQ(st.header[spec.name]["dtype"], "BF16");
    EXPECT_EQ(st.header[spec.name]["shape"].get<std::vector<int64_t>>(), spec.shape);
    total += st.bytes(spec.name).size();
  }
  EXPECT_EQ(summary.total_bytes, total);
  EXPECT_EQ(uint64_t(summary.num_parameters) * 2, total);
}

// Same config as a golden checkpoint written by transformers' save_pretrained -> the same
// safetensors header (names, shapes, dtypes, data offsets) and the same file size.
TEST_F(WriteRandomModel, HeaderMatchesTransformers) {
  for (const char* name : {"tiny-llama-gqa", "tiny-llama3-rope", "tiny-qwen2"}) {
    fs::path golden = test::golden_model(name);
    write_random_model(dir_ / name, read_json_file(golden / "config.json"), json(), {},
                       (golden / "config.json").string());
    auto ours = parse_safetensors(dir_ / name / "model.safetensors");
    auto theirs = parse_safetensors(golden / "model.safetensors");
    EXPECT_EQ(ours.header, theirs.header) << name;
    EXPECT_EQ(ours.raw.size(), theirs.raw.size()) << name;
  }
}

TEST_F(WriteRandomModel, ShardsLikeTransformers) {
  fs::path golden = test::golden_model("tiny-llama-f16-sharded");
  RandomModelOptions options;
  options.max_shard_bytes = 60'000;  // the golden checkpoint's max_shard_size="60KB"
  auto summary = write_random_model(dir_ / "s", read_json_file(golden / "config.json"), json(),
                                    options, "golden");
  EXPECT_EQ(summary.dtype, DType::kF16);  // from the config's dtype
  json ours = read_json_file(dir_ / "s" / "model.safetensors.index.json");
  json theirs = read_json_file(golden / "model.safetensors.index.json");
  EXPECT_EQ(ours, theirs);
  EXPECT_FALSE(fs::exists(dir_ / "s" / "model.safetensors"));
  // Each shard holds exactly the tensors the index maps to it, at the golden shard's size.
  for (const auto& file : summary.weight_files) {
    auto st = parse_safetensors(dir_ / "s" / file);
    std::set<std::string> in_file, mapped;
    for (const auto& [key, value] : st.header.items()) {
      if (key != "__metadata__") in_file.insert(key);
    }
    for (const auto& [key, value] : ours["weight_map"].items()) {
      if (value == file) mapped.insert(key);
    }
    EXPECT_EQ(in_file, mapped) << file;
    EXPECT_EQ(st.raw.size(), fs::file_size(golden / file)) << file;
  }
}

TEST_F(WriteRandomModel, WeightStatistics) {
  json config = tiny_config();
  config["vocab_size"] = 4000;  // enough elements for tight statistics
  config["num_hidden_layers"] = 8;
  RandomModelOptions options;
  options.dtype = DType::kF32;
  write(dir_ / "m", config, options);
  auto st = parse_safetensors(dir_ / "m" / "model.safetensors");
  auto check_normal = [&](const std::string& name, double stddev) {
    std::vector<float> v = st.values(name);
    double sum = 0, sum2 = 0;
    size_t within_one_sigma = 0;
    for (float x : v) {
      ASSERT_TRUE(std::isfinite(x)) << name;
      sum += x;
      sum2 += double(x) * x;
      within_one_sigma += std::abs(x) < stddev;
    }
    double n = double(v.size()), mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
    EXPECT_LT(std::abs(mean), 5 * stddev / std::sqrt(n)) << name;
    EXPECT_NEAR(sd / stddev, 1.0, 6 / std::sqrt(2 * n)) << name;
    EXPECT_NEAR(within_one_sigma / n, 0.6827, 5 * 0.466 / std::sqrt(n)) << name;
  };
  check_normal("model.embed_tokens.weight", 0.02);
  check_normal("lm_head.weight", 0.02);
  check_normal("model.layers.3.mlp.up_proj.weight", 0.02);
  check_normal("model.layers.7.self_attn.o_proj.weight", 0.02 / 4);
  check_normal("model.layers.0.mlp.down_proj.weight", 0.02 / 4);
  for (const char* norm : {"model.norm.weight", "model.layers.5.input_layernorm.weight"}) {
    for (float x : st.values(norm)) ASSERT_EQ(x, 1.0f) << norm;
  }
  // Every tensor draws its own stream.
  EXPECT_NE(st.bytes("model.embed_tokens.weight"), st.bytes("lm_head.weight"));
  EXPECT_NE(st.bytes("model.layers.0.self_attn.q_proj.weight"),
            st.bytes("model.layers.1.self_attn.q_proj.weight"));
}

TEST_F(WriteRandomModel, SameSeedSameBytesWhateverTheThreads) {
  json config = tiny_config();
  config["vocab_size"] = 20000;  // embed_tokens spans two generation chunks
  RandomModelOptions one_thread, three_threads, other_seed;
  one_thread.seed = three_threads.seed = 42;
  one_thread.num_threads = 1;
  three_threads.num_threads = 3;
  other_seed.seed = 43;
  write(dir_ / "a", config, one_thread);
  write(dir_ / "b", config, three_threads);
  write(dir_ / "c", config, other_seed);
  for (const char* file : {"model.safetensors", "config.json", "generation_config.json"}) {
    EXPECT_EQ(test::read_text_file(dir_ / "a" / file), test::read_text_file(dir_ / "b" / file));
  }
  auto a = parse_safetensors(dir_ / "a" / "model.safetensors");
  auto c = parse_safetensors(dir_ / "c" / "model.safetensors");
  for (const auto& spec : random_tensor_specs(parse_model_shape(config, "cfg"))) {
    if (spec.init == WeightInit::kNormal) {
      EXPECT_NE(a.bytes(spec.name), c.bytes(spec.name)) << spec.name;
    } else {
      EXPECT_EQ(a.bytes(spec.name), c.bytes(spec.name)) << spec.name;
    }
  }
}

TEST_F(WriteRandomModel, ShardsPastTheLimitAndReplacesAnEarlierModel) {
  RandomModelOptions options;
  options.max_shard_bytes = 30'000;
  options.tokenizer_dir = test::golden_model("stories260K");
  auto summary = write(dir_ / "m", tiny_config(), options);
  ASSERT_GT(summary.weight_files.size(), 2u);
  for (size_t i = 0; i < summary.weight_files.size(); ++i) {
    EXPECT_EQ(summary.weight_files[i], fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1,
                                                   summary.weight_files.size()));
    auto st = parse_safetensors(dir_ / "m" / summary.weight_files[i]);
    uint64_t data = st.raw.size() - 8 - st.header_length;
    EXPECT_TRUE(data <= 30'000 || st.header.size() == 2) << summary.weight_files[i];
  }
  json index = read_json_file(dir_ / "m" / "model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["total_size"], summary.total_bytes);
  EXPECT_EQ(index["metadata"]["total_parameters"], summary.num_parameters);
  EXPECT_EQ(index["weight_map"].size(),
            random_tensor_specs(parse_model_shape(tiny_config(), "c")).size());
  EXPECT_TRUE(fs::exists(dir_ / "m" / "tokenizer.json"));
  std::ofstream(dir_ / "m" / "notes.txt") << "not ours";

  // Rewriting unsharded, without a tokenizer, leaves no stale shard, index or tokenizer.
  write(dir_ / "m", tiny_config(), {});
  EXPECT_EQ(files_in(dir_ / "m"), std::set<std::string>({"config.json", "generation_config.json",
                                                         "model.safetensors", "notes.txt"}));
}

TEST_F(WriteRandomModel, CopiesTheTokenizer) {
  RandomModelOptions options;
  options.tokenizer_dir = test::golden_model("stories260K");
  auto summary = write(dir_ / "m", tiny_config(), options);
  EXPECT_TRUE(summary.has_tokenizer);
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_EQ(test::read_text_file(dir_ / "m" / file),
              test::read_text_file(*options.tokenizer_dir / file));
  }
  EXPECT_FALSE(fs::exists(dir_ / "m" / "special_tokens_map.json"));  // the source has none

  // The output directory may be the tokenizer's own directory.
  RandomModelOptions in_place;
  in_place.tokenizer_dir = dir_ / "m";
  auto again = write(dir_ / "m", tiny_config(), in_place);
  EXPECT_TRUE(again.has_tokenizer);
  EXPECT_TRUE(fs::exists(dir_ / "m" / "tokenizer.json"));

  options.tokenizer_dir = test::golden_model("tiny-qwen2");  // weights but no tokenizer
  EXPECT_THAT(
      [&] { write(dir_ / "n", tiny_config(), options); },
      ::testing::ThrowsMessage<Error>(HasSubstr(
          options.tokenizer_dir->string() +
          ": no tokenizer.json (--tokenizer needs tokenizer.json and tokenizer_config.json)")));
}

TEST_F(WriteRandomModel, DtypeOptionOverridesTheConfig) {
  json config = tiny_config();
  config["torch_dtype"] = "float32";
  RandomModelOptions f16;
  f16.dtype = DType::kF16;
  auto summary = write(dir_ / "m", config, f16);
  EXPECT_EQ(summary.dtype, DType::kF16);
  auto st = parse_safetensors(dir_ / "m" / "model.safetensors");
  EXPECT_EQ(st.header["model.norm.weight"]["dtype"], "F16");
  EXPECT_EQ(read_json_file(dir_ / "m" / "config.json")["torch_dtype"], "float16");
  EXPECT_EQ(write(dir_ / "n", config, {}).dtype, DType::kF32);
}

// Tandem's own loader and CPU forward pass accept what make-model writes, for every family,
// dtype, tied/untied and sharded layout, and produce finite, non-constant logits.
TEST_F(WriteRandomModel, TandemLoadsAndRunsIt) {
  struct Variant {
    std::string name;
    std::function<void(json&, RandomModelOptions&)> edit;
  };
  std::vector<Variant> variants = {
      {"llama-bf16", [](json&, RandomModelOptions&) {}},
      {"llama-tied-f16",
       [](json& c, RandomModelOptions& o) {
         c["tie_word_embeddings"] = true;
         o.dtype = DType::kF16;
       }},
      {"qwen2-f32",
       [](json& c, RandomModelOptions&) {
         c["model_type"] = "qwen2";
         c["torch_dtype"] = "float32";
       }},
      {"mistral", [](json& c, RandomModelOptions&) { c["model_type"] = "mistral"; }},
      {"llama-sharded", [](json&, RandomModelOptions& o) { o.max_shard_bytes = 20'000; }},
  };
  ThreadPool pool(2);
  for (const auto& v : variants) {
    SCOPED_TRACE(v.name);
    json config = tiny_config();
    RandomModelOptions options;
    v.edit(config, options);
    fs::path out = dir_ / v.name;
    auto summary = write(out, config, options);

    ModelConfig mc = load_model_config(out);
    ModelShape shape = parse_model_shape(config, "cfg");
    EXPECT_EQ(mc.model_type, shape.model_type);
    EXPECT_EQ(mc.hidden_size, shape.hidden_size);
    EXPECT_EQ(mc.head_dim, shape.head_dim);
    EXPECT_EQ(mc.num_kv_heads, shape.num_kv_heads);
    EXPECT_EQ(mc.tie_word_embeddings, shape.tie_word_embeddings);
    EXPECT_EQ(mc.qkv_bias, shape.qkv_bias);
    EXPECT_EQ(mc.dtype, summary.dtype);
    EXPECT_EQ(mc.eos_token_ids, std::vector<int>({2}));

    WeightStore weights = WeightStore::open(out);
    auto specs = random_tensor_specs(shape);
    EXPECT_EQ(weights.tensors().size(), specs.size());
    for (const auto& spec : specs) {
      EXPECT_EQ(weights.get(spec.name, spec.shape).dtype, summary.dtype) << spec.name;
    }

    LlamaModel model(out, &pool);
    KvCache kv(model.kv_cache_shape(/*num_blocks=*/1, /*block_size=*/16));
    ForwardBatch batch;
    batch.token_ids = {1, 17, 33, 49, 95};
    batch.positions = {0, 1, 2, 3, 4};
    batch.slot_mapping = {0, 1, 2, 3, 4};
    batch.query_start = {0, 5};
    batch.context_lens = {5};
    batch.block_tables = {0};
    batch.max_blocks_per_seq = 1;
    batch.logits_indices = {4};
    std::vector<float> logits(96, NAN);  // (1, vocab)
    model.forward(batch, kv, logits.data());
    double sum = 0, sum2 = 0;
    for (float x : logits) {
      ASSERT_TRUE(std::isfinite(x));
      sum += x;
      sum2 += double(x) * x;
    }
    EXPECT_GT(sum2 / 96 - (sum / 96) * (sum / 96), 1e-4);
  }
}

TEST_F(WriteRandomModel, UnwritableOutputDirectory) {
  std::ofstream(dir_ / "file") << "x";
  EXPECT_THAT([&] { write(dir_ / "file" / "m", tiny_config(), {}); },
              ::testing::ThrowsMessage<Error>(
                  HasSubstr((dir_ / "file" / "m").string() + ": cannot create output directory")));
  EXPECT_THAT([&] { write(dir_ / "file", tiny_config(), {}); },
              ::testing::ThrowsMessage<Error>(HasSubstr("exists and is not a directory")));
}

}  // namespace
}  // namespace tandem
