// Added tokens (tokenizer.json "added_tokens", special or not): they are cut out of the text
// before normalization and never go through the BPE model. Matching is leftmost-longest over all
// token contents (as tokenizers' Aho-Corasick), with the lstrip / rstrip / single_word options;
// tokens marked `normalized` are matched in the normalized text instead of the raw text.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_fields.h"
#include "tokenizer/normalizer.h"

namespace tandem::tokenizer {

struct AddedToken {
  int id = 0;
  std::string content;
  bool single_word = false;  // only match when not inside a word
  bool lstrip = false;       // also swallow whitespace on the left
  bool rstrip = false;       // also swallow whitespace on the right
  bool normalized = false;   // match against the normalized text
  bool special = false;      // skipped by decode(skip_special_tokens)
};

// A piece of text after splitting on added tokens: either an added token or plain text.
struct Segment {
  std::string_view text;  // the covered span of the split text
  int id = -1;            // the added token's id, or -1 for plain text
};

// Leftmost-longest matching of a fixed set of strings (a byte trie).
class TokenMatcher {
 public:
  void add(std::string_view content, int token_index);
  [[nodiscard]] bool empty() const { return nodes_.size() == 1; }
  // Non-overlapping leftmost-longest matches: (token index, begin, end).
  struct Hit {
    int token_index;
    size_t begin, end;
  };
  [[nodiscard]] std::vector<Hit> find_all(std::string_view text) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int>> children;  // (byte, node index)
    int token_index = -1;                                 // a token ends here
  };
  [[nodiscard]] std::optional<Hit> longest_at(std::string_view text, size_t pos) const;

  std::vector<Node> nodes_ = std::vector<Node>(1);  // nodes_[0] is the root
  std::array<bool, 256> first_byte_{};              // bytes some token starts with
};

class AddedVocabulary {
 public:
  // `normalizer` normalizes the contents of `normalized` tokens for matching.
  static AddedVocabulary from_json(const Json& added_tokens, const Normalizer& normalizer,
                                   const std::string& where);

  // Splits raw input on the non-normalized tokens.
  [[nodiscard]] std::vector<Segment> split_raw(std::string_view text) const;
  // Splits one normalized plain-text segment on the normalized tokens.
  [[nodiscard]] std::vector<Segment> split_normalized(std::string_view text) const;

  [[nodiscard]] const AddedToken* find(int id) const;
  [[nodiscard]] std::optional<int> find(std::string_view content) const;
  [[nodiscard]] const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  [[nodiscard]] std::vector<Segment> split(std::string_view text,
                                           const TokenMatcher& matcher) const;

  std::vector<AddedToken> tokens_;         // in file order
  std::unordered_map<int, size_t> by_id_;  // id -> index in tokens_
  std::unordered_map<std::string, int> by_content_;
  TokenMatcher raw_matcher_, normalized_matcher_;
};

}  // namespace tandem::tokenizer
