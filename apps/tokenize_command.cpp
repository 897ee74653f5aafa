// `tandem tokenize --model DIR [--no-special] TEXT`: prints the token ids of TEXT (`-` reads all
// of stdin verbatim) as a JSON array, e.g. [128000, 9906, 1917], and a newline.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "command_line.h"
#include "commands.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace tandem::apps {
namespace {

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  if (std::cin.bad()) fail("tokenize: cannot read stdin");
  return text;
}

}  // namespace

int tokenize_command(int argc, char** argv) {
  CLI::App app{"Print the token ids of a text as a JSON array.", argv[0]};
  std::string model_dir, text;
  bool no_special = false;
  app.add_option("--model", model_dir, "model or tokenizer directory (tokenizer.json)")->required();
  app.add_flag("--no-special", no_special, "do not add special tokens such as BOS");
  app.add_option("text", text, "the text, or - to read stdin")->required();
  if (std::optional<int> exit_code = parse_command_line(app, argc, argv)) return *exit_code;
  if (text == "-") text = read_stdin();
  const Tokenizer tokenizer = Tokenizer::load(model_dir);
  const std::vector<int> ids = tokenizer.encode(text, /*add_special_tokens=*/!no_special);
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", ids[i]);
  out += "]\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace tandem::apps
