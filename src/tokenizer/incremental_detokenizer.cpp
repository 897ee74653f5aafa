// Incremental detokenization with prefix/read offsets (see the header for the invariants).
#include "tokenizer/incremental_detokenizer.h"

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tandem {
namespace {

constexpr size_t kContextTokens = 6;  // context ids kept as left context (vLLM uses 5-6)

// Length of the longest common prefix of a and b that ends on a character boundary of b.
size_t common_prefix(std::string_view a, std::string_view b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  while (n > 0 && n < b.size() && (static_cast<uint8_t>(b[n]) & 0xC0) == 0x80) --n;
  return n;
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(Tokenizer tokenizer, bool skip_special_tokens,
                                               std::span<const int> context)
    : tokenizer_(std::move(tokenizer)), skip_special_tokens_(skip_special_tokens) {
  size_t start = context.size() > kContextTokens ? context.size() - kContextTokens : 0;
  // Never start inside a byte run: its text depends on the bytes before it.
  while (start > 0 && tokenizer_.is_byte_run_token(context[start])) --start;
  window_.assign(context.begin() + start, context.end());
  read_offset_ = window_.size();
  prefix_text_ = decode_window(read_offset_);
}

std::string IncrementalDetokenizer::decode_window(size_t end) const {
  return tokenizer_.decode(std::span<const int>(window_.data(), end), skip_special_tokens_);
}

size_t IncrementalDetokenizer::commit_point() const {
  size_t k = window_.size();
  while (k > read_offset_) {
    const int id = window_[k - 1];
    const bool invisible = skip_special_tokens_ && tokenizer_.is_special(id);
    if (!invisible && !tokenizer_.is_byte_run_token(id)) break;
    --k;
  }
  return k;
}

std::string IncrementalDetokenizer::push(int id) {
  if (!tokenizer_.id_to_token(id))
    fail("detokenize: token id {} is out of range or unused (vocabulary size {})", id,
         tokenizer_.vocab_size());
  window_.push_back(id);
  const size_t end = commit_point();
  if (end <= read_offset_) return {};
  std::string text = decode_window(end);
  if (text.size() <= prefix_text_.size() || text.ends_with(unicode::kReplacement) ||
      !text.starts_with(prefix_text_))
    return {};
  std::string piece = text.substr(prefix_text_.size());
  // The emitted ids [read_offset_, end) become the left context of the next window.
  window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(read_offset_));
  read_offset_ = end - read_offset_;
  prefix_text_ = decode_window(read_offset_);
  return piece;
}

std::string IncrementalDetokenizer::flush() {
  if (window_.size() == read_offset_) return {};
  const std::string text = decode_window(window_.size());
  const size_t keep =
      text.starts_with(prefix_text_) ? prefix_text_.size() : common_prefix(prefix_text_, text);
  read_offset_ = window_.size();
  prefix_text_ = text;
  return text.substr(keep);
}

}  // namespace tandem
