// Tokenizer: a Hugging Face tokenizer directory (tokenizer.json + tokenizer_config.json) loaded
// into a C++ object that reproduces the `tokenizers` library's encode/decode exactly for the
// pipelines it supports (byte-level BPE with regex pre-tokenizer, SentencePiece-style BPE with
// byte fallback). Immutable after load and safe for concurrent use; copies share one instance.
#pragma once
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tandem {

class Tokenizer {
 public:
  static constexpr size_t kDefaultEncodeThreads = 8;

  // Loads <dir>/tokenizer.json (required) and <dir>/tokenizer_config.json (optional; also
  // <dir>/chat_template.jinja). Throws tandem::Error naming the file and key on any problem.
  static Tokenizer load(const std::filesystem::path& dir);

  // Token ids of `text` (valid UTF-8, else tandem::Error). With add_special_tokens the
  // post-processor's template is applied (e.g. BOS first). Added/special tokens written in the
  // text are always recognised, as in tokenizers. A long text's words are merged on up to
  // `max_threads` threads (the calling one included); the ids do not depend on it.
  [[nodiscard]] std::vector<int> encode(std::string_view text, bool add_special_tokens = true,
                                        size_t max_threads = kDefaultEncodeThreads) const;
  // Text of `ids`; throws tandem::Error for an id with no token.
  [[nodiscard]] std::string decode(std::span<const int> ids,
                                   bool skip_special_tokens = false) const;

  // One past the largest token id (model vocabulary and added tokens).
  [[nodiscard]] int vocab_size() const;
  [[nodiscard]] std::optional<int> bos_id() const;  // tokenizer_config.json bos_token
  [[nodiscard]] std::optional<int> eos_id() const;  // tokenizer_config.json eos_token
  [[nodiscard]] std::optional<std::string> bos_token() const;
  [[nodiscard]] std::optional<std::string> eos_token() const;
  [[nodiscard]] bool is_special(int id) const;
  [[nodiscard]] std::optional<int> token_to_id(std::string_view token) const;
  [[nodiscard]] std::optional<std::string> id_to_token(int id) const;
  // Ids of the added tokens marked special / of all added tokens, ascending.
  [[nodiscard]] const std::vector<int>& special_ids() const;
  [[nodiscard]] const std::vector<int>& added_ids() const;
  // The chat template: tokenizer_config.json "chat_template" (a string, or the entry named
  // "default" of a list of {name, template}), else chat_template.jinja; nullopt if none.
  [[nodiscard]] std::optional<std::string> chat_template() const;
  // Every named template (a plain string template is named "default").
  [[nodiscard]] const std::map<std::string, std::string>& chat_templates() const;

  // Whether the decoder merges this id with its neighbours as a <0xXX> byte run (byte fallback):
  // text ending in such a run may still change. Used by IncrementalDetokenizer.
  [[nodiscard]] bool is_byte_run_token(int id) const;

  struct Impl;  // opaque: defined in tokenizer.cpp

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace tandem
