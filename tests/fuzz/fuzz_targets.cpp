// The fuzz targets' bodies (see fuzz_targets.h).
#include "fuzz_targets.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "config/kv_transfer_config.h"
#include "config/lmcache_config.h"
#include "core/error.h"
#include "core/logging.h"
#include "model/safetensors.h"
#include "server/openai_errors.h"
#include "server/openai_protocol.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "transfer/kv_connector_config.h"
#include "transfer/wire_protocol.h"

#ifndef TANDEM_DEFAULT_SHARED_DIR
#error "TANDEM_DEFAULT_SHARED_DIR must name the shared golden data"
#endif

namespace tandem::fuzz {
namespace {

// Rejected configs log warnings; millions of runs would only print them.
[[maybe_unused]] const bool kQuiet = (set_log_level(LogLevel::kError), true);

std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("TANDEM_SHARED"); env && *env) return env;
  return TANDEM_DEFAULT_SHARED_DIR;
}

std::string_view as_text(Bytes bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// A check that must hold for every input: a failure aborts (libFuzzer reports it as a crash).
void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

const Tokenizer& loaded_tokenizer(bool llama3) {
  static const Tokenizer stories = Tokenizer::load(shared_dir() / "golden/models/stories260K");
  static const Tokenizer llama =
      Tokenizer::load(shared_dir() / "golden/models/llama3-tokenizer");
  return llama3 ? llama : stories;
}

void check_decoding(const Tokenizer& tok, const std::vector<int>& ids, bool skip_special) {
  std::string whole;
  try {
    whole = tok.decode(ids, skip_special);
  } catch (const Error&) {
    return;  // an id with no token
  }
  IncrementalDetokenizer incremental(tok, skip_special);
  std::string pieces;
  for (int id : ids) pieces += incremental.push(id);
  pieces += incremental.flush();
  require(pieces == whole, "incremental detokenization differs from decode()");
}

}  // namespace

void tokenizer(Bytes input) {
  if (input.empty()) return;
  const uint8_t mode = input[0];
  const Tokenizer& tok = loaded_tokenizer(mode & 1);
  Bytes rest = input.subspan(1);
  if (mode & 2) {  // ids: 3-byte little-endian, some past the vocabulary
    std::vector<int> ids;
    for (size_t i = 0; i + 2 < rest.size(); i += 3) {
      int raw = rest[i] | (rest[i + 1] << 8) | (rest[i + 2] << 16);
      ids.push_back(mode & 4 ? raw : raw % (tok.vocab_size() + 8));
    }
    check_decoding(tok, ids, mode & 8);
    return;
  }
  std::vector<int> ids;
  try {
    ids = tok.encode(as_text(rest), mode & 4);
  } catch (const Error&) {
    return;  // invalid UTF-8
  }
  for (int id : ids) require(id >= 0 && id < tok.vocab_size(), "encode() gave an id out of range");
  check_decoding(tok, ids, mode & 8);
}

void request_parser(Bytes input) {
  if (input.empty()) return;
  std::string_view body = as_text(input.subspan(1));
  try {
    switch (input[0] % 4) {
      case 0: (void)parse_completion_request(body); break;
      case 1: (void)parse_chat_completion_request(body); break;
      case 2: (void)parse_tokenize_request(body); break;
      default: (void)parse_detokenize_request(body); break;
    }
  } catch (const ApiError& e) {
    require(int(e.status()) == 400, "a request parser error that is not a 400");
    require(!e.to_json().empty(), "an empty error body");
  }
}

void jinja(Bytes input) {
  if (input.empty()) return;
  std::string text(as_text(input.subspan(1)));
  chat::RenderOptions options;
  options.now = 0;  // strftime_now: a fixed clock
  try {
    if (input[0] % 2 == 0) {
      chat::ChatTemplate tmpl(text);
      chat::ChatInput chat_input;
      chat_input.messages = nlohmann::ordered_json::parse(
          R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi {{ x }}"},
              {"role":"assistant","content":"Hello","tool_calls":[{"type":"function",
              "function":{"name":"f","arguments":{"a":1}}}]},{"role":"user","content":"Bye"}])");
      chat_input.tools = nlohmann::ordered_json::parse(
          R"([{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])");
      chat_input.bos_token = "<s>";
      chat_input.eos_token = "</s>";
      (void)chat::render_chat(tmpl, chat_input, options);
      return;
    }
    nlohmann::ordered_json messages = nlohmann::ordered_json::parse(text, nullptr, false);
    if (messages.is_discarded()) return;
    static const std::vector<chat::ChatTemplate> golden = [] {
      std::vector<chat::ChatTemplate> templates;
      for (const char* name : {"chatml", "llama3", "mistral"}) {
        std::ifstream in(shared_dir() / "golden/chat" / (std::string(name) + ".json"));
        templates.emplace_back(nlohmann::json::parse(in).at("template").get<std::string>());
      }
      return templates;
    }();
    chat::ChatInput chat_input;
    chat_input.messages = std::move(messages);
    for (const chat::ChatTemplate& tmpl : golden) {
      try {
        (void)chat::render_chat(tmpl, chat_input, options);
      } catch (const Error&) {
      }
    }
  } catch (const Error&) {  // TemplateError: syntax, runtime, limits
  }
}

void safetensors(Bytes input) {
  // SafetensorsFile maps a path: one scratch file per process.
  static const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                            ("tandem-fuzz-" + std::to_string(getpid()) +
                                             ".safetensors");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(input.data()), std::streamsize(input.size()));
  }
  try {
    SafetensorsFile file(path);
    for (const auto& [name, tensor] : file.tensors()) {
      require(tensor.nbytes == size_t(tensor.numel()) * dtype_size(tensor.dtype),
              "a tensor's byte count does not match its shape");
      const auto* bytes = static_cast<const volatile uint8_t*>(tensor.data);
      uint8_t sum = 0;
      for (size_t i = 0; i < tensor.nbytes; ++i) sum ^= bytes[i];  // every byte is mapped
      (void)sum;
    }
  } catch (const Error&) {
  }
}

void config(Bytes input) {
  if (input.empty()) return;
  std::string_view text = as_text(input.subspan(1));
  try {
    if (input[0] % 2 == 0) {
      LmCacheConfig lmcache = parse_lmcache_config(text, "fuzz.yaml", {});
      KvTransferConfig kv = parse_kv_transfer_config(
          lmcache.is_receiver() ? R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_consumer"})"
                                : R"({"kv_connector":"LMCacheConnectorV1","kv_role":"kv_producer"})");
      (void)make_kv_connector_config(kv, lmcache, "fuzz");
    } else {
      (void)parse_kv_transfer_config(text);
    }
  } catch (const Error&) {
  }
}

void wire_protocol(Bytes input) {
  try {
    (void)complete_frame_size(input);
  } catch (const WireError&) {
  }
  // The payload's CRC is made right, so that mutations reach the message decoders (a wrong CRC
  // is a unit test of its own: tests/transfer/wire_protocol_test.cpp).
  std::vector<uint8_t> frame(input.begin(), input.end());
  if (frame.size() >= kFrameHeaderBytes) {
    uint32_t crc = crc32c(std::span(frame).subspan(kFrameHeaderBytes));
    for (int i = 0; i < 4; ++i) frame[12 + i] = uint8_t(crc >> (8 * i));
  }
  WireMessage message;
  try {
    message = decode_message(frame);
  } catch (const WireError&) {
    return;
  }
  std::vector<uint8_t> again = encode_message(message);
  require(decode_message(again) == message, "a decoded message does not survive re-encoding");
}

const std::vector<Target>& all_targets() {
  static const std::vector<Target> targets = {
      {"tokenizer", tokenizer}, {"request_parser", request_parser}, {"jinja", jinja},
      {"safetensors", safetensors}, {"config", config}, {"wire_protocol", wire_protocol}};
  return targets;
}

}  // namespace tandem::fuzz
