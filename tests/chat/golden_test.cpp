// Every case of every golden chat file (shared/golden/chat/*.json, rendered by transformers'
// apply_chat_template): the rendering must match exactly, and cases where the template raised
// must raise too (with the same raise_exception message).
#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "chat/chat_template.h"
#include "test_support.h"

namespace tandem::chat {
namespace {

std::vector<std::string> golden_names() {
  std::vector<std::string> names;
  for (const auto& entry :
       std::filesystem::directory_iterator(test::shared_dir() / "golden" / "chat"))
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

nlohmann::ordered_json load_golden(const std::string& name) {
  const auto path = test::shared_dir() / "golden" / "chat" / (name + ".json");
  return nlohmann::ordered_json::parse(test::read_text_file(path));
}

// make_golden.py writes bos_token "" for templates whose tokenizer has no BOS (None there).
std::optional<std::string> token_or_unset(const nlohmann::ordered_json& golden, const char* key) {
  if (!golden.contains(key) || golden[key].is_null()) return std::nullopt;
  std::string token = golden[key].get<std::string>();
  if (token.empty()) return std::nullopt;
  return token;
}

TEST(ChatGolden, AllFilesPresent) {
  const auto names = golden_names();
  for (const char* expected : {"chatml", "features", "llama3", "mistral"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
}

class ChatGoldenFile : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatGoldenFile, EveryCaseMatches) {
  const nlohmann::ordered_json golden = load_golden(GetParam());
  const ChatTemplate tpl(golden["template"].get<std::string>());
  ASSERT_FALSE(golden["cases"].empty());
  int index = 0;
  for (const auto& c : golden["cases"]) {
    SCOPED_TRACE(GetParam() + " case " + std::to_string(index++) + ": " + c.dump());
    ChatInput input;
    input.messages = c["messages"];
    input.generation_prompt =
        c["add_generation_prompt"].get<bool>() ? GenerationPrompt::kAdd : GenerationPrompt::kOmit;
    if (c.contains("tools")) input.tools = c["tools"];
    input.bos_token = token_or_unset(golden, "bos_token");
    input.eos_token = token_or_unset(golden, "eos_token");
    if (c.contains("rendered")) {
      EXPECT_EQ(render_chat(tpl, input), c["rendered"].get<std::string>());
    } else {
      ASSERT_TRUE(c.contains("error"));
      const std::string expected = c["error"].get<std::string>();
      try {
        (void)render_chat(tpl, input);
        ADD_FAILURE() << "expected an error: " << expected;
      } catch (const TemplateError& e) {
        const std::string prefix = "TemplateError: ";
        if (expected.starts_with(prefix)) {
          EXPECT_EQ(e.message(), expected.substr(prefix.size()));
        }
        EXPECT_GT(e.line(), 0);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllGoldenFiles, ChatGoldenFile, ::testing::ValuesIn(golden_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tandem::chat
