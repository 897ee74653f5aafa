// End-to-end tests of `tandem tokenize` and `tandem detokenize`: ids as a JSON array, stdin
// with `-`, both id formats, special-token flags, and one clear error line with a non-zero exit
// for bad arguments.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "test_support.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string model_arg(const std::string& name) {
  return "--model '" + test::golden_model(name).string() + "'";
}

// Expects a failed run with exactly one line on stderr: "error: ..." containing `message`.
void expect_error(const std::string& args, const std::string& message) {
  const auto r = test::run_tandem(args);
  EXPECT_NE(r.exit_code, 0) << args;
  EXPECT_THAT(r.err, StartsWith("error: ")) << args;
  EXPECT_THAT(r.err, HasSubstr(message)) << args;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out, "") << args;
}

TEST(TokenizeCli, PrintsIdsAsJsonArray) {
  auto r = test::run_tandem("tokenize " + model_arg("llama3-tokenizer") + " 'Hello world'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[128000, 9906, 1917]\n");
  r = test::run_tandem("tokenize " + model_arg("llama3-tokenizer") + " --no-special 'Hello world'");
  EXPECT_EQ(r.out, "[9906, 1917]\n");
  r = test::run_tandem("tokenize --no-special " + model_arg("stories260K") + " ''");
  EXPECT_EQ(r.out, "[]\n");
}

TEST(TokenizeCli, ReadsAllOfStdinVerbatimForDash) {
  const auto dir = test::make_temp_dir("tandem-tokenize-cli");
  const auto input = dir / "in.txt";
  std::ofstream(input, std::ios::binary) << "line1\nline2\r\n";  // trailing newline kept
  const auto r = test::run_tandem("tokenize " + model_arg("llama3-tokenizer") + " - <'" +
                                  input.string() + "'");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[128000, 1074, 16, 198, 1074, 17, 319]\n");
}

TEST(DetokenizeCli, AcceptsBothIdFormats) {
  auto r = test::run_tandem("detokenize " + model_arg("stories260K") +
                            " '[1, 346, 306, 414, 263, 304, 341]'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<s> Hello world");
  r = test::run_tandem("detokenize --skip-special " + model_arg("stories260K") +
                       " 1,346,306,414,263,304,341");
  EXPECT_EQ(r.out, "Hello world");
  r = test::run_tandem("detokenize " + model_arg("llama3-tokenizer") + " '[]'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(TokenizeCli, RoundTripsThroughDetokenize) {
  const std::string text = "Mixed 日本 and émoji 🎉.";
  auto ids =
      test::run_tandem("tokenize --no-special " + model_arg("stories260K") + " '" + text + "'");
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  ids.out.pop_back();  // the newline
  const auto r = test::run_tandem("detokenize " + model_arg("stories260K") + " '" + ids.out + "'");
  EXPECT_EQ(r.out, text);
}

TEST(TokenizeCli, BadArgumentsGiveOneErrorLine) {
  expect_error("tokenize 'Hello'", "--model");
  expect_error("tokenize " + model_arg("stories260K"), "text");
  expect_error("tokenize --model /nonexistent/dir hi", "/nonexistent/dir");
  expect_error("tokenize " + model_arg("stories260K") + " --bogus hi", "--bogus");
  const auto dir = test::make_temp_dir("tandem-tokenize-cli");
  expect_error("tokenize --model '" + dir.string() + "' hi", "tokenizer.json");
  std::filesystem::remove_all(dir);
}

TEST(DetokenizeCli, BadIdsGiveOneErrorLine) {
  expect_error("detokenize " + model_arg("stories260K") + " 1,512", "512");
  expect_error("detokenize " + model_arg("llama3-tokenizer") + " '[1, 128256]'", "128256");
  expect_error("detokenize " + model_arg("stories260K") + " 1,-2", "-2");
  expect_error("detokenize " + model_arg("stories260K") + " 1,x,3", "\"x\"");
  expect_error("detokenize " + model_arg("stories260K") + " '[1,2'", "brackets");
  expect_error("detokenize " + model_arg("stories260K") + " 1,,2", "token id");
  expect_error("detokenize " + model_arg("stories260K"), "ids");
}

}  // namespace
}  // namespace tandem
