// Pre-tokenizer steps. Each step maps the current list of words to a new list, in order.
#include "tokenizer/pre_tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tandem::tokenizer {
namespace {

// The regex ByteLevel uses when use_regex is true (GPT-2's), as in tokenizers.
constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

SplitBehavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  fail("{}.behavior: unknown split behavior \"{}\"", where, name);
}

struct Piece {
  size_t begin, end;  // byte range in the split text
  bool is_match;
};

// The pieces covering `text`: the matches and the gaps between them.
std::vector<Piece> cover(std::string_view text, const Pattern& pattern, bool invert) {
  std::vector<Piece> pieces;
  size_t done = 0;
  for (const Match& m : pattern.find_all(text)) {
    if (m.begin != done) pieces.push_back({done, m.begin, invert});
    pieces.push_back({m.begin, m.end, !invert});
    done = m.end;
  }
  if (done != text.size()) pieces.push_back({done, text.size(), invert});
  return pieces;
}

// Folds each match into the piece before it (kMergedWithPrevious) or, walking backwards, into
// the piece after it (kMergedWithNext), as tokenizers does.
std::vector<Piece> merge_matches(const std::vector<Piece>& pieces, bool into_next) {
  std::vector<Piece> out;
  bool previous_match = false;
  const size_t n = pieces.size();
  for (size_t k = 0; k < n; ++k) {
    const Piece& p = pieces[into_next ? n - 1 - k : k];
    if (p.is_match && !previous_match && !out.empty()) {
      (into_next ? out.back().begin : out.back().end) = into_next ? p.begin : p.end;
    } else {
      out.push_back(p);
    }
    previous_match = p.is_match;
  }
  if (into_next) std::reverse(out.begin(), out.end());
  return out;
}

std::vector<Piece> merge_contiguous(const std::vector<Piece>& pieces) {
  std::vector<Piece> out;
  bool previous_match = false;
  for (const Piece& p : pieces) {
    if (p.is_match == previous_match && !out.empty()) {
      out.back().end = p.end;
    } else {
      out.push_back(p);
    }
    previous_match = p.is_match;
  }
  return out;
}

// The non-empty pieces of `text` that `behavior` keeps, as views into `text`.
void split_views(std::string_view text, const Pattern& pattern, SplitBehavior behavior, bool invert,
                 std::vector<std::string_view>& out) {
  std::vector<Piece> pieces = cover(text, pattern, invert);
  switch (behavior) {
    case SplitBehavior::kRemoved:
      std::erase_if(pieces, [](const Piece& p) { return p.is_match; });
      break;
    case SplitBehavior::kIsolated:
      break;
    case SplitBehavior::kMergedWithPrevious:
      pieces = merge_matches(pieces, false);
      break;
    case SplitBehavior::kMergedWithNext:
      pieces = merge_matches(pieces, true);
      break;
    case SplitBehavior::kContiguous:
      pieces = merge_contiguous(pieces);
      break;
  }
  for (const Piece& p : pieces)
    if (p.end > p.begin) out.push_back(text.substr(p.begin, p.end - p.begin));
}

}  // namespace

std::vector<std::string> split_by_pattern(std::string_view text, const Pattern& pattern,
                                          SplitBehavior behavior, bool invert) {
  std::vector<std::string_view> views;
  split_views(text, pattern, behavior, invert, views);
  return std::vector<std::string>(views.begin(), views.end());
}

std::string to_byte_level(std::string_view text) {
  std::string out;
  unicode::append_byte_level(out, text);
  return out;
}

PreTokenizer PreTokenizer::from_json(const Json& node, const std::string& where) {
  PreTokenizer p;
  if (!node.is_null()) p.add_steps(node, where);
  return p;
}

void PreTokenizer::add_steps(const Json& node, const std::string& where) {
  const std::string type = type_of(node, where);
  if (type == "Sequence") {
    const Json& list = require_member(node, "pretokenizers", where);
    if (!list.is_array()) fail("{}.pretokenizers: expected an array", where);
    for (size_t i = 0; i < list.size(); ++i)
      add_steps(list[i], fmt::format("{}.pretokenizers[{}]", where, i));
  } else if (type == "Split") {
    steps_.push_back(
        Split{Pattern::from_json(require_member(node, "pattern", where), where + ".pattern"),
              parse_behavior(require_string(node, "behavior", where), where),
              optional_bool(node, "invert", where, false)});
  } else if (type == "ByteLevel") {
    ByteLevel b{optional_bool(node, "add_prefix_space", where, true), std::nullopt};
    if (optional_bool(node, "use_regex", where, true))
      b.gpt2_split = Pattern::from_json(Json{{"Regex", kGpt2Regex}}, where + " (GPT-2 regex)");
    steps_.push_back(std::move(b));
  } else {
    fail("{}: unsupported pre_tokenizer type \"{}\" (supported: Sequence, Split, ByteLevel)", where,
         type);
  }
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  std::string storage;
  std::vector<std::string_view> words;
  split(text, words, storage);
  return std::vector<std::string>(words.begin(), words.end());
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& words,
                         std::string& storage) const {
  words.clear();
  storage.clear();
  if (!text.empty()) words.push_back(text);
  std::vector<std::string_view> next;
  std::string next_storage;
  std::vector<size_t> ends;  // (words,) end of each byte-level word in next_storage
  for (const Step& step : steps_) {
    next.clear();
    if (const auto* s = std::get_if<Split>(&step)) {
      for (const std::string_view word : words)
        split_views(word, s->pattern, s->behavior, s->invert, next);
      words.swap(next);  // views into the same text or storage as before
      continue;
    }
    // ByteLevel writes every word anew into next_storage; the views follow once it is complete.
    const auto& b = std::get<ByteLevel>(step);
    next_storage.clear();
    ends.clear();
    std::string prefixed;
    for (std::string_view word : words) {
      if (b.add_prefix_space && !word.starts_with(' ')) {
        prefixed.resize(word.size() + 1);
        prefixed[0] = ' ';
        word.copy(prefixed.data() + 1, word.size());
        word = prefixed;
      }
      if (!b.gpt2_split) {
        unicode::append_byte_level(next_storage, word);
        ends.push_back(next_storage.size());
        continue;
      }
      next.clear();
      split_views(word, *b.gpt2_split, SplitBehavior::kIsolated, /*invert=*/false, next);
      for (const std::string_view piece : next) {
        unicode::append_byte_level(next_storage, piece);
        ends.push_back(next_storage.size());
      }
    }
    storage.swap(next_storage);  // no view is left into the old storage: `words` are all new
    words.clear();
    size_t begin = 0;
    for (const size_t end : ends) {
      words.push_back(std::string_view(storage).substr(begin, end - begin));
      begin = end;
    }
  }
}

}  // namespace tandem::tokenizer
