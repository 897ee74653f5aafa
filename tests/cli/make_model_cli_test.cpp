// End-to-end tests of `tandem make-model`: a tiny model from a config file (files, dtype, seed,
// tokenizer copy, log line) and one clear error line with a non-zero exit for bad arguments.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/parsed_safetensors.h"
#include "test_support.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class MakeModelCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::make_temp_dir("tandem-make-model-cli");
    config_ = dir_ / "tiny.json";
    std::ofstream(config_) << R"({"model_type": "llama", "vocab_size": 128, "hidden_size": 64,
      "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
      "max_position_embeddings": 512, "bos_token_id": 1, "eos_token_id": 2})";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs make-model with `args` and expects exactly one line on stderr: "error: ..." with
  // `message` in it, and a non-zero exit code.
  void expect_error(const std::string& args, const std::string& message) {
    auto r = test::run_tandem("make-model " + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_THAT(r.err, StartsWith("error: ")) << args;
    EXPECT_THAT(r.err, HasSubstr(message)) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }

  fs::path dir_, config_;
};

TEST_F(MakeModelCli, WritesATinyModelFromAConfigFile) {
  fs::path out = dir_ / "out";
  auto r = test::run_tandem("make-model --config '" + config_.string() + "' --out '" +
                            out.string() + "' --dtype f16 --seed 7");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no tokenizer"));
  EXPECT_THAT(r.err, HasSubstr("seed 7"));
  auto st = test::parse_safetensors(out / "model.safetensors");
  EXPECT_EQ(st.header["model.layers.1.mlp.down_proj.weight"]["dtype"], "F16");
  EXPECT_EQ(st.header["model.layers.1.mlp.down_proj.weight"]["shape"], nlohmann::json({64, 128}));
  EXPECT_TRUE(st.header.contains("lm_head.weight"));
  auto config = nlohmann::json::parse(test::read_text_file(out / "config.json"));
  EXPECT_EQ(config["torch_dtype"], "float16");
  EXPECT_EQ(config["vocab_size"], 128);
  EXPECT_TRUE(fs::exists(out / "generation_config.json"));

  // The same seed again gives the same bytes; another seed does not.
  fs::path again = dir_ / "again", other = dir_ / "other";
  std::string base = "make-model --config '" + config_.string() + "' --dtype f16 --out ";
  ASSERT_EQ(test::run_tandem(base + "'" + again.string() + "' --seed 7").exit_code, 0);
  ASSERT_EQ(test::run_tandem(base + "'" + other.string() + "' --seed 8").exit_code, 0);
  EXPECT_EQ(test::read_text_file(out / "model.safetensors"),
            test::read_text_file(again / "model.safetensors"));
  EXPECT_NE(test::read_text_file(out / "model.safetensors"),
            test::read_text_file(other / "model.safetensors"));
}

TEST_F(MakeModelCli, CopiesATokenizer) {
  fs::path tokenizer = test::golden_model("stories260K"), out = dir_ / "out";
  auto r = test::run_tandem("make-model --config '" + config_.string() + "' --out '" +
                            out.string() + "' --tokenizer '" + tokenizer.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("tokenizer copied from " + tokenizer.string()));
  EXPECT_EQ(test::read_text_file(out / "tokenizer.json"),
            test::read_text_file(tokenizer / "tokenizer.json"));
  EXPECT_TRUE(fs::exists(out / "tokenizer_config.json"));
}

TEST_F(MakeModelCli, HelpListsTheOptions) {
  auto r = test::run_tandem("make-model --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* option : {"--config", "--out", "--dtype", "--seed", "--tokenizer"}) {
    EXPECT_THAT(r.out, HasSubstr(option));
  }
}

TEST_F(MakeModelCli, BadArgumentsGiveOneErrorLine) {
  std::string out = " --out '" + (dir_ / "out").string() + "'";
  std::string config = " --config '" + config_.string() + "'";
  expect_error("--config llama-9" + out,
               "'llama-9' is neither a model preset (llama-3.1-8b, llama-3.2-1b) nor an "
               "existing config file");
  expect_error(config + out + " --dtype f64", "--dtype: 'f64' is not one of bf16, f16, f32");
  expect_error(config, "--out is required");
  expect_error(out, "--config is required");
  expect_error(config + out + " --seed abc", "--seed");

  fs::path broken = dir_ / "broken.json", missing_key = dir_ / "missing.json";
  std::ofstream(broken) << "{\"model_type\": \"llama\",";
  std::ofstream(missing_key) << R"({"model_type": "llama", "vocab_size": 128})";
  expect_error("--config '" + broken.string() + "'" + out, broken.string() + ": invalid JSON");
  expect_error("--config '" + missing_key.string() + "'" + out,
               missing_key.string() + ": missing key 'hidden_size'");

  std::ofstream(dir_ / "plain-file") << "x";
  expect_error(config + " --out '" + (dir_ / "plain-file" / "m").string() + "'",
               "cannot create output directory");
  expect_error(config + out + " --tokenizer '" + dir_.string() + "'",
               dir_.string() + ": no tokenizer.json");
  EXPECT_FALSE(fs::exists(dir_ / "out"));  // nothing was written by the failed runs
}

}  // namespace
}  // namespace tandem
