// Added-token matching and the text split around the matches (tokenizers' find_matches).
#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/pattern.h"
#include "tokenizer/unicode.h"

namespace tandem::tokenizer {
namespace {

// Whether the single character `ch` is in a Unicode class, e.g. \w or \s (PCRE2 UCP semantics).
bool char_in_class(const Regex& klass, std::string_view ch) { return klass.find(ch).has_value(); }

const Regex& word_char() {
  static const Regex r(R"(\A\w\z)", "added token single_word check");
  return r;
}
const Regex& space_char() {
  static const Regex r(R"(\A\s\z)", "added token lstrip/rstrip check");
  return r;
}

// Start of the last character of non-empty valid UTF-8 `s`.
size_t last_char_start(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

bool ends_with_word(std::string_view s) {
  return !s.empty() && char_in_class(word_char(), s.substr(last_char_start(s)));
}
bool starts_with_word(std::string_view s) {
  return !s.empty() && char_in_class(word_char(), s.substr(0, unicode::char_length(s, 0)));
}
// Where the run of whitespace that ends `s` begins.
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    const size_t start = last_char_start(s.substr(0, end));
    if (!char_in_class(space_char(), s.substr(start, end - start))) break;
    end = start;
  }
  return end;
}
// Length of the run of whitespace that starts `s`.
size_t leading_space_length(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t n = unicode::char_length(s, pos);
    if (!char_in_class(space_char(), s.substr(pos, n))) break;
    pos += n;
  }
  return pos;
}

AddedToken parse_token(const Json& node, const std::string& where) {
  AddedToken t;
  t.id = require_index(node, "id", where);
  t.content = require_string(node, "content", where);
  t.single_word = optional_bool(node, "single_word", where, false);
  t.lstrip = optional_bool(node, "lstrip", where, false);
  t.rstrip = optional_bool(node, "rstrip", where, false);
  t.special = optional_bool(node, "special", where, false);
  t.normalized = optional_bool(node, "normalized", where, !t.special);
  return t;
}

}  // namespace

void TokenMatcher::add(std::string_view content, int token_index) {
  int node = 0;
  for (unsigned char byte : content) {
    auto& children = nodes_[node].children;
    auto it = std::find_if(children.begin(), children.end(),
                           [byte](const auto& c) { return c.first == byte; });
    if (it != children.end()) {
      node = it->second;
      continue;
    }
    children.emplace_back(byte, static_cast<int>(nodes_.size()));
    node = static_cast<int>(nodes_.size());
    nodes_.emplace_back();
  }
  if (nodes_[node].token_index < 0) nodes_[node].token_index = token_index;
  if (!content.empty()) first_byte_[static_cast<unsigned char>(content[0])] = true;
}

std::optional<TokenMatcher::Hit> TokenMatcher::longest_at(std::string_view text, size_t pos) const {
  std::optional<Hit> best;
  int node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& children = nodes_[node].children;
    const unsigned char byte = static_cast<unsigned char>(text[i]);
    auto it = std::find_if(children.begin(), children.end(),
                           [byte](const auto& c) { return c.first == byte; });
    if (it == children.end()) break;
    node = it->second;
    if (nodes_[node].token_index >= 0) best = Hit{nodes_[node].token_index, pos, i + 1};
  }
  return best;
}

std::vector<TokenMatcher::Hit> TokenMatcher::find_all(std::string_view text) const {
  std::vector<Hit> hits;
  if (empty()) return hits;
  for (size_t pos = 0; pos < text.size();) {
    if (first_byte_[static_cast<unsigned char>(text[pos])]) {
      if (auto hit = longest_at(text, pos)) {
        hits.push_back(*hit);
        pos = hit->end;
        continue;
      }
    }
    ++pos;
  }
  return hits;
}

AddedVocabulary AddedVocabulary::from_json(const Json& added_tokens, const Normalizer& normalizer,
                                           const std::string& where) {
  AddedVocabulary v;
  if (added_tokens.is_null()) return v;
  if (!added_tokens.is_array()) fail("{}: expected an array", where);
  for (size_t i = 0; i < added_tokens.size(); ++i) {
    AddedToken t = parse_token(added_tokens[i], fmt::format("{}[{}]", where, i));
    if (t.content.empty()) continue;  // tokenizers ignores empty added tokens
    const int index = static_cast<int>(v.tokens_.size());
    if (t.normalized) {
      v.normalized_matcher_.add(normalizer.normalize(t.content), index);
    } else {
      v.raw_matcher_.add(t.content, index);
    }
    v.by_id_[t.id] = v.tokens_.size();
    v.by_content_.emplace(t.content, t.id);
    v.tokens_.push_back(std::move(t));
  }
  return v;
}

std::vector<Segment> AddedVocabulary::split_raw(std::string_view text) const {
  return split(text, raw_matcher_);
}

std::vector<Segment> AddedVocabulary::split_normalized(std::string_view text) const {
  return split(text, normalized_matcher_);
}

std::vector<Segment> AddedVocabulary::split(std::string_view text,
                                            const TokenMatcher& matcher) const {
  std::vector<Segment> segments;
  size_t done = 0;  // end of the last emitted segment
  for (const TokenMatcher::Hit& hit : matcher.find_all(text)) {
    const AddedToken& token = tokens_[hit.token_index];
    size_t begin = hit.begin, end = hit.end;
    if (token.single_word &&
        (ends_with_word(text.substr(0, begin)) || starts_with_word(text.substr(end))))
      continue;
    if (token.lstrip) begin = std::max(trailing_space_start(text.substr(0, begin)), done);
    if (token.rstrip) end += leading_space_length(text.substr(end));
    begin = std::max(begin, done);  // never re-cover text an earlier rstrip took
    if (end <= begin) continue;
    if (done < begin) segments.push_back({text.substr(done, begin - done), -1});
    segments.push_back({text.substr(begin, end - begin), token.id});
    done = end;
  }
  if (done < text.size()) segments.push_back({text.substr(done), -1});
  return segments;
}

const AddedToken* AddedVocabulary::find(int id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int> AddedVocabulary::find(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

}  // namespace tandem::tokenizer
