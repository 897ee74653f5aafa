// The tokenizer.json "decoder": turns the token strings of some ids back into text. Steps act on
// the list of token strings in order, exactly like tokenizers' decode_chain: ByteLevel (byte-level
// alphabet -> bytes -> lossy UTF-8), Replace, ByteFallback (<0xXX> runs -> UTF-8 or one U+FFFD per
// byte), Fuse (join) and Strip (per token); Sequence nests them. No decoder joins with spaces.
#pragma once
#include <string>
#include <variant>
#include <vector>

#include "tokenizer/json_fields.h"
#include "tokenizer/pattern.h"

namespace tandem::tokenizer {

class Decoder {
 public:
  // `node` may be null: tokens are then joined with single spaces, as tokenizers does.
  static Decoder from_json(const Json& node, const std::string& where);

  [[nodiscard]] std::string decode(std::vector<std::string> tokens) const;
  // Whether consecutive <0xXX> tokens are decoded as one byte run (the run's text can change
  // until a non-byte token ends it; the incremental detokenizer needs to know).
  [[nodiscard]] bool has_byte_fallback() const;

 private:
  struct ByteLevel {};
  struct Replace {
    Pattern pattern;
    std::string content;
  };
  struct ByteFallback {};
  struct Fuse {};
  struct Strip {
    std::string content;  // one character, UTF-8
    size_t start;         // strip up to this many leading `content` characters
    size_t stop;          // and up to this many trailing ones
  };
  using Step = std::variant<ByteLevel, Replace, ByteFallback, Fuse, Strip>;

  void add_steps(const Json& node, const std::string& where);

  bool present_ = false;
  std::vector<Step> steps_;
};

// <0xXX> -> the byte, for tokens of exactly that shape (hex digits in either case).
[[nodiscard]] std::optional<uint8_t> parse_byte_token(std::string_view token);

}  // namespace tandem::tokenizer
