// Shared by the tokenizer tests: the golden JSONL cases (made by HF tokenizers) and one loaded
// Tokenizer per golden tokenizer directory, kept for the whole test process.
#pragma once
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace tandem::test {

struct GoldenCase {
  std::string text;
  std::vector<int> ids;              // encode(text, add_special_tokens=True)
  std::vector<int> ids_no_special;   // encode(text, add_special_tokens=False)
  std::string decoded;               // decode(ids)
  std::string decoded_skip_special;  // decode(ids, skip_special_tokens=True)
};

// Cases of shared/golden/tokenizer/<name>.jsonl.
inline std::vector<GoldenCase> golden_cases(const std::string& name) {
  std::istringstream lines(
      read_text_file(shared_dir() / "golden" / "tokenizer" / (name + ".jsonl")));
  std::vector<GoldenCase> cases;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    cases.push_back({j.at("text"), j.at("ids"), j.at("ids_no_special"), j.at("decoded"),
                     j.at("decoded_skip_special")});
  }
  return cases;
}

// The golden tokenizer directories: "llama3" -> llama3-tokenizer, "stories260K" -> stories260K.
// Each is loaded on first use only (llama3 takes a few hundred ms).
inline const Tokenizer& golden_tokenizer(const std::string& name) {
  if (name == "llama3") {
    static const Tokenizer llama3 = Tokenizer::load(golden_model("llama3-tokenizer"));
    return llama3;
  }
  static const Tokenizer stories = Tokenizer::load(golden_model("stories260K"));
  return stories;
}

// Random SentencePiece-style words over stories260K's pieces: the word-start mark, then 1 to
// max_pieces pieces (1 to long_pieces for every long_every-th word, when long_every > 0).
inline std::vector<std::string> random_piece_words(unsigned seed, int count, int max_pieces,
                                                   int long_every = 0, int long_pieces = 0) {
  const std::vector<std::string> syllables = {"on", "ce", "up", "ti", "me", "lit", "tle", "gir",
                                              "l",  "é",  "x",  "qu", "日", "ba",  "ll",  "ed"};
  std::mt19937 rng(seed);
  std::vector<std::string> words;
  for (int i = 0; i < count; ++i) {
    std::string word = "\xE2\x96\x81";  // sentencepiece's word-start mark
    const int most = long_every > 0 && i % long_every == 0 ? long_pieces : max_pieces;
    for (int n = 1 + int(rng() % unsigned(most)); n > 0; --n)
      word += syllables[rng() % syllables.size()];
    words.push_back(word);
  }
  return words;
}

}  // namespace tandem::test
