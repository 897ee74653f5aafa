// IncrementalDetokenizer: streaming text for generated ids, one id at a time. Each push returns
// only text that can no longer change, so every piece is valid UTF-8 and the concatenation of all
// pieces plus flush() equals tokenizer.decode(all ids) exactly. Uses vLLM-style prefix/read
// offsets: a small window of already-emitted ids is re-decoded with the new ones so decoders that
// look at neighbours (SentencePiece's leading-space Strip, byte-level UTF-8) see their context.
// Text is held back while it ends in U+FFFD (an unfinished UTF-8 sequence) or in a <0xXX> byte
// run (ByteFallback decodes a whole run at once: a later byte can turn it into U+FFFDs).
#pragma once
#include <span>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tandem {

class IncrementalDetokenizer {
 public:
  // `context`: ids decoded before (e.g. the prompt). Their text is not emitted; they give the
  // first pushed ids their left context, so the pieces then equal decode(context + pushed) minus
  // decode(context).
  explicit IncrementalDetokenizer(Tokenizer tokenizer, bool skip_special_tokens = false,
                                  std::span<const int> context = {});

  // Adds one id; returns the newly finished text (often empty while bytes are pending).
  // Throws tandem::Error for an id with no token.
  [[nodiscard]] std::string push(int id);
  // Returns all text still held back (call once, after the last push).
  [[nodiscard]] std::string flush();

 private:
  // End of the ids whose text is final: before a trailing <0xXX> run (and skipped specials).
  [[nodiscard]] size_t commit_point() const;
  [[nodiscard]] std::string decode_window(size_t end) const;

  Tokenizer tokenizer_;
  bool skip_special_tokens_;
  std::vector<int> window_;  // (window,) ids from the prefix offset on
  size_t read_offset_ = 0;   // window_[0:read_offset_] has been emitted
  std::string prefix_text_;  // decode(window_[0:read_offset_])
};

}  // namespace tandem
