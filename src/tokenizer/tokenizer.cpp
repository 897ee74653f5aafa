// The tokenizer pipeline, in tokenizers' order: split out added tokens -> normalize each plain
// segment -> split out normalized added tokens -> pre-tokenize into words -> BPE each word ->
// post-process (special tokens). Decoding maps ids to token strings and runs the decoder chain.
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "core/json_file.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_config.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/unicode.h"
#include "tokenizer/word_batch.h"

namespace tandem {

using tokenizer::Json;

struct Tokenizer::Impl {
  tokenizer::Normalizer normalizer;
  tokenizer::AddedVocabulary added;
  tokenizer::PreTokenizer pre_tokenizer;
  tokenizer::BpeModel model;
  tokenizer::PostProcessor post_processor;
  tokenizer::Decoder decoder;
  tokenizer::TokenizerConfig config;
  int vocab_size = 0;
  std::vector<uint8_t> special;   // (vocab_size,) 1 for special added tokens
  std::vector<uint8_t> byte_run;  // (vocab_size,) 1 for <0xXX> tokens under ByteFallback
  std::vector<int> special_ids;   // ascending
  std::vector<int> added_ids;     // ascending
  std::optional<int> bos_id, eos_id;

  const std::string* token_of(int id) const {
    if (const auto* t = added.find(id)) return &t->content;
    return model.id_to_token(id);
  }
  std::optional<int> id_of(std::string_view token) const {
    if (auto id = added.find(token)) return id;
    return model.token_to_id(token);
  }
};

namespace {

std::optional<int> config_token_id(const Tokenizer::Impl& impl,
                                   const std::optional<std::string>& token, std::string_view key,
                                   const std::filesystem::path& dir) {
  if (!token) return std::nullopt;
  auto id = impl.id_of(*token);
  if (!id)
    fail("{}: {} \"{}\" is not a token of tokenizer.json", (dir / "tokenizer_config.json").string(),
         key, *token);
  return id;
}

// tokenizer.json decides which special tokens encode adds; tokenizer_config.json's
// add_bos_token / add_eos_token only apply when tokenizer.json has no post_processor.
tokenizer::PostProcessor choose_post_processor(const Json& root, const Tokenizer::Impl& impl,
                                               const std::string& where) {
  const Json& node = root.contains("post_processor") ? root["post_processor"] : Json();
  if (!node.is_null() || (!impl.config.add_bos_token && !impl.config.add_eos_token))
    return tokenizer::PostProcessor::from_json(node, where + ": post_processor");
  std::vector<int> prefix, suffix;
  if (impl.config.add_bos_token.value_or(false)) {
    if (!impl.bos_id) fail("{}: add_bos_token is set but there is no bos_token", where);
    prefix.push_back(*impl.bos_id);
  }
  if (impl.config.add_eos_token.value_or(false)) {
    if (!impl.eos_id) fail("{}: add_eos_token is set but there is no eos_token", where);
    suffix.push_back(*impl.eos_id);
  }
  return tokenizer::PostProcessor::around(std::move(prefix), std::move(suffix));
}

void index_ids(Tokenizer::Impl& impl) {
  impl.vocab_size = impl.model.id_limit();
  for (const auto& t : impl.added.tokens()) impl.vocab_size = std::max(impl.vocab_size, t.id + 1);
  impl.special.assign(impl.vocab_size, 0);
  impl.byte_run.assign(impl.vocab_size, 0);
  for (const auto& t : impl.added.tokens()) {
    impl.added_ids.push_back(t.id);
    if (t.special) impl.special_ids.push_back(t.id);
    if (t.special) impl.special[t.id] = 1;
  }
  std::sort(impl.added_ids.begin(), impl.added_ids.end());
  std::sort(impl.special_ids.begin(), impl.special_ids.end());
  if (!impl.decoder.has_byte_fallback()) return;
  for (int id = 0; id < impl.vocab_size; ++id) {
    const std::string* token = impl.token_of(id);
    if (token && tokenizer::parse_byte_token(*token)) impl.byte_run[id] = 1;
  }
}

tokenizer::BpeModel load_model(const tokenizer::TokenizerJson& file, const std::string& where) {
  const Json& node = tokenizer::require_member(file.root, "model", where);
  if (file.has_vocab && file.has_merges)
    return tokenizer::BpeModel::from_tables(node, file.tables, where + ": model");
  // vocab or merges is missing or of the wrong type: the tree path reports which.
  Json copy = node;
  if (file.has_vocab) copy["vocab"] = Json::object();
  if (file.has_merges) copy["merges"] = Json::array();
  (void)tokenizer::BpeModel::from_json(copy, where + ": model");
  fail("{}: model: vocab and merges could not be read", where);
}

std::shared_ptr<Tokenizer::Impl> build(const tokenizer::TokenizerJson& file,
                                       const std::filesystem::path& dir, const std::string& where) {
  const Json& root = file.root;
  if (!root.is_object()) fail("{}: expected a JSON object, got {}", where, root.type_name());
  auto impl = std::make_shared<Tokenizer::Impl>();
  auto member = [&](const char* key) { return root.contains(key) ? root[key] : Json(); };
  impl->normalizer = tokenizer::Normalizer::from_json(member("normalizer"), where + ": normalizer");
  impl->added = tokenizer::AddedVocabulary::from_json(member("added_tokens"), impl->normalizer,
                                                      where + ": added_tokens");
  impl->pre_tokenizer =
      tokenizer::PreTokenizer::from_json(member("pre_tokenizer"), where + ": pre_tokenizer");
  impl->model = load_model(file, where);
  impl->decoder = tokenizer::Decoder::from_json(member("decoder"), where + ": decoder");
  impl->config = tokenizer::TokenizerConfig::load(dir);
  impl->bos_id = config_token_id(*impl, impl->config.bos_token, "bos_token", dir);
  impl->eos_id = config_token_id(*impl, impl->config.eos_token, "eos_token", dir);
  impl->post_processor = choose_post_processor(root, *impl, where);
  index_ids(*impl);
  return impl;
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::load(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(dir)) fail("{}: tokenizer directory does not exist", dir.string());
  if (!std::filesystem::is_directory(dir)) fail("{}: not a directory", dir.string());
  const auto path = dir / "tokenizer.json";
  if (!std::filesystem::exists(path))
    fail("{}: file not found (a Hugging Face tokenizer directory needs tokenizer.json)",
         path.string());
  const tokenizer::TokenizerJson file = tokenizer::read_tokenizer_json(path);
  try {
    return Tokenizer(build(file, dir, path.string()));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: unexpected JSON content: {}", path.string(), e.what());
  }
}

std::vector<int> Tokenizer::encode(std::string_view text, bool add_special_tokens,
                                   size_t max_threads) const {
  const Impl& impl = *impl_;
  if (size_t bad = unicode::find_invalid_utf8(text); bad != std::string_view::npos)
    fail("encode: text is not valid UTF-8 (invalid byte 0x{:02X} at offset {})",
         static_cast<uint8_t>(text[bad]), bad);
  std::vector<int> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<std::string_view> words;  // views into `normalized` or `storage`
  std::string storage;
  for (const tokenizer::Segment& raw : impl.added.split_raw(text)) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    const std::string normalized = impl.normalizer.normalize(std::string(raw.text));
    for (const tokenizer::Segment& piece : impl.added.split_normalized(normalized)) {
      if (piece.id >= 0) {
        ids.push_back(piece.id);
        continue;
      }
      impl.pre_tokenizer.split(piece.text, words, storage);
      tokenizer::tokenize_words(impl.model, words, ids, max_threads);
    }
  }
  if (add_special_tokens) impl.post_processor.apply(ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int> ids, bool skip_special_tokens) const {
  const Impl& impl = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int id : ids) {
    const std::string* token = impl.token_of(id);
    if (!token)
      fail("decode: token id {} is out of range or unused (vocabulary size {})", id,
           impl.vocab_size);
    if (skip_special_tokens && impl.special[id]) continue;
    tokens.push_back(*token);
  }
  return impl.decoder.decode(std::move(tokens));
}

int Tokenizer::vocab_size() const { return impl_->vocab_size; }
std::optional<int> Tokenizer::bos_id() const { return impl_->bos_id; }
std::optional<int> Tokenizer::eos_id() const { return impl_->eos_id; }
std::optional<std::string> Tokenizer::bos_token() const { return impl_->config.bos_token; }
std::optional<std::string> Tokenizer::eos_token() const { return impl_->config.eos_token; }

bool Tokenizer::is_special(int id) const {
  return id >= 0 && id < impl_->vocab_size && impl_->special[id];
}

bool Tokenizer::is_byte_run_token(int id) const {
  return id >= 0 && id < impl_->vocab_size && impl_->byte_run[id];
}

std::optional<int> Tokenizer::token_to_id(std::string_view token) const {
  return impl_->id_of(token);
}

std::optional<std::string> Tokenizer::id_to_token(int id) const {
  const std::string* token = impl_->token_of(id);
  if (!token) return std::nullopt;
  return *token;
}

const std::vector<int>& Tokenizer::special_ids() const { return impl_->special_ids; }
const std::vector<int>& Tokenizer::added_ids() const { return impl_->added_ids; }

std::optional<std::string> Tokenizer::chat_template() const {
  auto it = impl_->config.chat_templates.find("default");
  if (it == impl_->config.chat_templates.end()) return std::nullopt;
  return it->second;
}

const std::map<std::string, std::string>& Tokenizer::chat_templates() const {
  return impl_->config.chat_templates;
}

}  // namespace tandem
