// A nlohmann SAX handler that builds a JSON tree for everything except model.vocab and
// model.merges, which it streams into BpeTables.
#include "tokenizer/tokenizer_json.h"

#include "core/error.h"
#include "core/json_file.h"

namespace tandem::tokenizer {
namespace {

class Handler : public nlohmann::json_sax<Json> {
 public:
  explicit Handler(TokenizerJson& out) : out_(out) {}

  bool null() override { return value(nullptr); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t v) override { return integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    return v > static_cast<uint64_t>(INT64_MAX) ? value(v) : integer(static_cast<int64_t>(v));
  }
  bool number_float(number_float_t v, const string_t&) override { return value(v); }
  bool binary(binary_t& v) override { return value(std::move(v)); }
  bool string(string_t& v) override;
  bool key(string_t& k) override;
  bool start_object(std::size_t) override;
  bool end_object() override;
  bool start_array(std::size_t) override;
  bool end_array() override;
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error_ = std::string("invalid JSON: ") + e.what();
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  enum class Capture { kNone, kVocab, kMerges, kMergePair };

  bool integer(int64_t v);
  bool value(Json v);
  // Stores an empty object/array as the next value and makes it the innermost open container.
  bool open_container(Json empty);
  bool reject(std::string message) {
    error_ = std::move(message);
    return false;
  }
  // Whether the container being opened is root.model.<name>.
  bool opens_model_member(const char* name) const {
    return stack_.size() == 2 && keys_.size() == 2 && keys_[0] == "model" && keys_[1] == name;
  }

  TokenizerJson& out_;
  std::vector<Json*> stack_;       // open containers, innermost last
  std::vector<std::string> keys_;  // current key of each open object (path from the root)
  Capture capture_ = Capture::kNone;
  std::string vocab_key_;
  std::vector<std::string> pair_;  // the strings of a ["left", "right"] merge being read
  std::string error_;
};

bool Handler::value(Json v) {
  if (capture_ == Capture::kVocab)
    return reject(
        fmt::format("model.vocab: token \"{}\" has a non-integer id {}", vocab_key_, v.dump()));
  if (capture_ != Capture::kNone)
    return reject(fmt::format("model.merges[{}]: expected \"left right\" or [\"left\", \"right\"]",
                              out_.tables.merges.size()));
  if (stack_.empty()) {
    out_.root = std::move(v);
  } else if (stack_.back()->is_array()) {
    stack_.back()->push_back(std::move(v));
  } else {
    (*stack_.back())[keys_.back()] = std::move(v);
  }
  return true;
}

bool Handler::open_container(Json empty) {
  if (!value(std::move(empty))) return false;
  stack_.push_back(stack_.empty()              ? &out_.root
                   : stack_.back()->is_array() ? &stack_.back()->back()
                                               : &(*stack_.back())[keys_.back()]);
  keys_.emplace_back();
  return true;
}

bool Handler::integer(int64_t v) {
  if (capture_ != Capture::kVocab) return value(v);
  out_.tables.vocab.emplace_back(std::move(vocab_key_), v);
  return true;
}

bool Handler::string(string_t& v) {
  if (capture_ == Capture::kMerges) {
    append_merge_line(v, out_.tables.merges,
                      fmt::format("model.merges[{}]", out_.tables.merges.size()));
    return true;
  }
  if (capture_ == Capture::kMergePair) {
    pair_.push_back(std::move(v));
    return true;
  }
  return value(std::move(v));
}

bool Handler::key(string_t& k) {
  if (capture_ == Capture::kVocab) {
    vocab_key_ = std::move(k);
  } else {
    keys_.back() = std::move(k);
  }
  return true;
}

bool Handler::start_object(std::size_t) {
  if (capture_ != Capture::kNone) return value(Json::object());  // rejects with a message
  if (opens_model_member("vocab")) {
    capture_ = Capture::kVocab;
    out_.has_vocab = true;
    return true;
  }
  return open_container(Json::object());
}

bool Handler::end_object() {
  if (capture_ == Capture::kVocab) {
    capture_ = Capture::kNone;
    (*stack_.back())[keys_.back()] = nullptr;
    return true;
  }
  stack_.pop_back();
  keys_.pop_back();
  return true;
}

bool Handler::start_array(std::size_t) {
  if (capture_ == Capture::kMerges) {
    capture_ = Capture::kMergePair;
    pair_.clear();
    return true;
  }
  if (capture_ != Capture::kNone) return value(Json::array());  // rejects with a message
  if (opens_model_member("merges")) {
    capture_ = Capture::kMerges;
    out_.has_merges = true;
    return true;
  }
  return open_container(Json::array());
}

bool Handler::end_array() {
  if (capture_ == Capture::kMergePair) {
    if (pair_.size() != 2)
      return reject(fmt::format("model.merges[{}]: expected [\"left\", \"right\"], got {} strings",
                                out_.tables.merges.size(), pair_.size()));
    out_.tables.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
    capture_ = Capture::kMerges;
    return true;
  }
  if (capture_ == Capture::kMerges) {
    capture_ = Capture::kNone;
    (*stack_.back())[keys_.back()] = nullptr;
    return true;
  }
  stack_.pop_back();
  keys_.pop_back();
  return true;
}

}  // namespace

void append_merge_line(std::string_view line,
                       std::vector<std::pair<std::string, std::string>>& merges,
                       const std::string& where) {
  if (line.starts_with("#version")) return;
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos)
    fail("{}: expected \"left right\" (one space), got \"{}\"", where, line);
  merges.emplace_back(line.substr(0, space), line.substr(space + 1));
}

TokenizerJson read_tokenizer_json(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  TokenizerJson out;
  Handler handler(out);
  try {
    if (!Json::sax_parse(text, &handler)) fail("{}: {}", path.string(), handler.error());
  } catch (const Error& e) {
    fail("{}: {}", path.string(), e.what());
  }
  return out;
}

}  // namespace tandem::tokenizer
