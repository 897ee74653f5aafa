// Loading errors: each bad tokenizer directory gives one tandem::Error naming the file (and the
// key or value at fault) instead of a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace tandem {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// A small valid byte-fallback BPE tokenizer.json; tests patch one part of it.
nlohmann::json minimal_tokenizer() {
  return nlohmann::json::parse(R"({
    "added_tokens": [{"id": 0, "content": "<s>", "special": true, "normalized": false}],
    "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
    "model": {"type": "BPE", "vocab": {"<s>": 0, "a": 1, "b": 2, "ab": 3},
              "merges": ["a b"]}})");
}

class TokenizerDir : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("tandem-tok"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  // The message of the Error that loading dir_ throws ("" if it loads).
  std::string load_error() {
    try {
      (void)Tokenizer::load(dir_);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  std::filesystem::path dir_;
};

TEST_F(TokenizerDir, MinimalTokenizerLoads) {
  write("tokenizer.json", minimal_tokenizer().dump());
  const Tokenizer tok = Tokenizer::load(dir_);
  EXPECT_EQ(tok.encode("ab<s>ba"), (std::vector<int>{3, 0, 2, 1}));
  EXPECT_EQ(tok.decode(std::vector<int>{3, 0, 2}), "ab <s> b");  // no decoder: joined by spaces
  EXPECT_EQ(tok.bos_id(), std::nullopt);
}

TEST_F(TokenizerDir, MissingDirectory) {
  std::filesystem::remove_all(dir_);
  EXPECT_THAT(load_error(), AllOf(HasSubstr(dir_.string()), HasSubstr("does not exist")));
}

TEST_F(TokenizerDir, MissingTokenizerJson) {
  write("tokenizer_config.json", "{}");
  EXPECT_THAT(load_error(), AllOf(HasSubstr("tokenizer.json"), HasSubstr("not found")));
}

TEST_F(TokenizerDir, MalformedJson) {
  write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {)");
  EXPECT_THAT(load_error(), AllOf(HasSubstr("tokenizer.json"), HasSubstr("invalid JSON")));
}

TEST_F(TokenizerDir, UnsupportedModelType) {
  auto j = minimal_tokenizer();
  j["model"]["type"] = "WordPiece";
  write("tokenizer.json", j.dump());
  EXPECT_THAT(load_error(), AllOf(HasSubstr("tokenizer.json: model"), HasSubstr("WordPiece")));
}

TEST_F(TokenizerDir, UnsupportedPipelineParts) {
  const std::pair<const char*, const char*> cases[] = {
      {"normalizer", R"({"type": "NFKC"})"},
      {"pre_tokenizer", R"({"type": "Sequence", "pretokenizers": [{"type": "Metaspace"}]})"},
      {"decoder", R"({"type": "WordPiece"})"},
      {"post_processor", R"({"type": "RobertaProcessing"})"},
  };
  for (const auto& [key, node] : cases) {
    auto j = minimal_tokenizer();
    j[key] = nlohmann::json::parse(node);
    write("tokenizer.json", j.dump());
    EXPECT_THAT(load_error(),
                AllOf(HasSubstr("tokenizer.json"), HasSubstr(key), HasSubstr("unsupported")))
        << key;
  }
}

TEST_F(TokenizerDir, BadModelContents) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"type": "BPE", "vocab": {"a": -1}, "merges": []})", "invalid id -1"},
      {R"({"type": "BPE", "vocab": {"a": 0}, "merges": ["a c"]})", "merges[0]"},
      {R"({"type": "BPE", "vocab": {"a": 0}, "merges": ["a a a"]})", "one space"},
      {R"({"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]})", "merges[0]"},
      {R"({"type": "BPE", "vocab": {"a": 0}})", "missing key \"merges\""},
      {R"({"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"})", "unk_token"},
      {R"({"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1})", "dropout"},
      {R"({"type": "BPE", "vocab": [], "merges": []})", "model.vocab"},
  };
  for (const auto& [model, expected] : cases) {
    auto j = minimal_tokenizer();
    j["model"] = nlohmann::json::parse(model);
    write("tokenizer.json", j.dump());
    EXPECT_THAT(load_error(), AllOf(HasSubstr("tokenizer.json: model"), HasSubstr(expected)))
        << model;
  }
}

TEST_F(TokenizerDir, BadRegexNamesThePattern) {
  auto j = minimal_tokenizer();
  j["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  write("tokenizer.json", j.dump());
  EXPECT_THAT(load_error(), AllOf(HasSubstr("pre_tokenizer.pattern"), HasSubstr("(unclosed")));
}

TEST_F(TokenizerDir, BadTokenizerConfig) {
  write("tokenizer.json", minimal_tokenizer().dump());
  write("tokenizer_config.json", "[1, 2");
  EXPECT_THAT(load_error(), HasSubstr("tokenizer_config.json"));
  write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  EXPECT_THAT(load_error(), AllOf(HasSubstr("tokenizer_config.json"), HasSubstr("</s>")));
  write("tokenizer_config.json", R"({"bos_token": 7})");
  EXPECT_THAT(load_error(), AllOf(HasSubstr("tokenizer_config.json"), HasSubstr("bos_token")));
}

TEST_F(TokenizerDir, ConfigSpecialTokensTemplatesAndAddBos) {
  write("tokenizer.json", minimal_tokenizer().dump());
  write("tokenizer_config.json", R"({"bos_token": {"content": "<s>", "__type": "AddedToken"},
      "add_bos_token": true,
      "chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]})");
  const Tokenizer tok = Tokenizer::load(dir_);
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.encode("ab"), (std::vector<int>{0, 3}));  // no post_processor: add_bos_token
  EXPECT_EQ(tok.encode("ab", /*add_special_tokens=*/false), (std::vector<int>{3}));
  EXPECT_EQ(tok.chat_template(), "D");
  EXPECT_EQ(tok.chat_templates().at("tool_use"), "T");
}

TEST_F(TokenizerDir, ChatTemplateJinjaFile) {
  write("tokenizer.json", minimal_tokenizer().dump());
  write("chat_template.jinja", "{{ messages }}");
  EXPECT_EQ(Tokenizer::load(dir_).chat_template(), "{{ messages }}");
}

}  // namespace
}  // namespace tandem
