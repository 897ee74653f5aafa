// `tandem detokenize --model DIR [--skip-special] IDS`: prints the text of IDS, given as
// `1,2,3` or a JSON array `[1,2,3]`, exactly as decoded (no newline added).
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <string>
#include <vector>

#include "command_line.h"
#include "commands.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace tandem::apps {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// "1,2,3" or "[1, 2, 3]" -> ids; throws tandem::Error naming the bad item.
std::vector<int> parse_ids(std::string_view text) {
  std::string_view s = trim(text);
  if (s.starts_with('[') != s.ends_with(']') || (s.starts_with('[') && s.size() < 2))
    fail("detokenize: IDS \"{}\" has unbalanced brackets", text);
  if (s.starts_with('[')) s = trim(s.substr(1, s.size() - 2));
  std::vector<int> ids;
  if (s.empty()) return ids;
  for (size_t begin = 0;;) {
    const size_t comma = s.find(',', begin);
    const std::string_view item = trim(s.substr(begin, comma == s.npos ? s.npos : comma - begin));
    int id = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size())
      fail("detokenize: \"{}\" in IDS is not an integer token id", item);
    ids.push_back(id);
    if (comma == s.npos) return ids;
    begin = comma + 1;
  }
}

}  // namespace

int detokenize_command(int argc, char** argv) {
  CLI::App app{"Print the text of token ids.", argv[0]};
  std::string model_dir, ids_text;
  bool skip_special = false;
  app.add_option("--model", model_dir, "model or tokenizer directory (tokenizer.json)")->required();
  app.add_flag("--skip-special", skip_special, "leave special tokens out of the text");
  app.add_option("ids", ids_text, "token ids: 1,2,3 or [1,2,3]")->required();
  if (std::optional<int> exit_code = parse_command_line(app, argc, argv)) return *exit_code;
  const std::vector<int> ids = parse_ids(ids_text);
  const Tokenizer tokenizer = Tokenizer::load(model_dir);
  for (int id : ids) {
    if (id < 0 || id >= tokenizer.vocab_size() || !tokenizer.id_to_token(id))
      fail("detokenize: token id {} is out of range (vocabulary size {})", id,
           tokenizer.vocab_size());
  }
  const std::string text = tokenizer.decode(ids, /*skip_special_tokens=*/skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace tandem::apps
