// The fuzz targets' entry points: one function per parser that faces untrusted bytes. libFuzzer
// drivers (<target>_fuzzer.cpp, built by scripts/test_fuzz.sh with clang) call them with
// generated inputs; replay_test.cpp calls them, in the normal build, with every input kept under
// corpus/<target>/ (seeds) and regressions/<target>/ (inputs that once crashed). Each returns
// normally for any input: a rejected input is the parser's own error, caught here; any other
// exception, crash, leak or sanitizer report is a bug.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tandem::fuzz {

using Bytes = std::span<const uint8_t>;

// Byte 0 picks the tokenizer (stories260K's SentencePiece BPE or Llama 3's byte-level BPE) and
// the mode; the rest is text to encode (then decoded, also incrementally), or token ids.
void tokenizer(Bytes input);
// Byte 0 picks the endpoint (completions, chat, tokenize, detokenize); the rest is the body.
void request_parser(Bytes input);
// Byte 0 even: the rest is a template rendered with fixed messages; odd: the rest is a messages
// JSON rendered through the golden templates (ChatML, Llama 3, Mistral).
void jinja(Bytes input);
// The whole input is a .safetensors file.
void safetensors(Bytes input);
// Byte 0 picks the loader: the LMCache YAML (then the connector config built from it) or the
// --kv-transfer-config JSON.
void config(Bytes input);
// The whole input is a wire frame (its CRC is fixed up, so that mutations reach the payload
// decoders); what decodes must encode back to the same message.
void wire_protocol(Bytes input);

struct Target {
  const char* name;
  void (*run)(Bytes);
};
// Every target, by name (the corpus folder names).
const std::vector<Target>& all_targets();

}  // namespace tandem::fuzz
