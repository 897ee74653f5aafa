// `tandem chat-template`: renders the model's template (or --template FILE) as the golden
// transformers renderings, and reports bad arguments in one error line.
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

nlohmann::json golden_chat(const std::string& name) {
  return nlohmann::json::parse(
      test::read_text_file(test::shared_dir() / "golden" / "chat" / (name + ".json")));
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

TEST(ChatTemplateCli, RendersGoldenCasesWithATemplateFile) {
  auto dir = test::make_temp_dir("tandem-chat-cli");
  auto golden = golden_chat("chatml");
  std::ofstream(dir / "t.jinja") << golden["template"].get<std::string>();
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    if (!c.contains("rendered") || c.contains("tools")) continue;
    std::string args = "chat-template --model " + quote(test::golden_model("llama3-tokenizer")) +
                       " --template " + quote((dir / "t.jinja").string()) + " --messages " +
                       quote(c["messages"].dump());
    if (c["add_generation_prompt"].get<bool>()) args += " --add-generation-prompt";
    auto r = test::run_tandem(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, c["rendered"].get<std::string>());
    ++checked;
  }
  EXPECT_GT(checked, 0);
  std::filesystem::remove_all(dir);
}

TEST(ChatTemplateCli, UsesTheModelsOwnTemplate) {
  auto r = test::run_tandem("chat-template --model " +
                            quote(test::golden_model("llama3-tokenizer")) +
                            " --messages '[{\"role\":\"user\",\"content\":\"Hi\"}]' "
                            "--add-generation-prompt");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"));
  EXPECT_TRUE(r.out.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n"));
}

TEST(ChatTemplateCli, ErrorsAreOneLine) {
  const std::string llama3 = quote(test::golden_model("llama3-tokenizer"));
  const std::pair<std::string, std::string> cases[] = {
      {"--model " + quote(test::golden_model("stories260K")) + " --messages '[]'",
       "no chat_template"},
      {"--model " + llama3 + " --messages '[{'", "--messages: invalid JSON"},
      {"--model " + llama3 + " --messages '{}'", "JSON array"},
      {"--model " + llama3, "--messages"},
  };
  for (const auto& [args, expected] : cases) {
    auto r = test::run_tandem("chat-template " + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_THAT(r.err, HasSubstr(expected)) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace tandem
