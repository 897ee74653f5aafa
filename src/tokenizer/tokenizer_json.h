// Reading tokenizer.json in one streaming pass. The model's vocab and merges (for Llama 3:
// 128K entries and 280K merges, most of the 9 MB file) go straight into flat vectors; the rest
// becomes an ordinary JSON tree. This keeps loading fast (no DOM of 400K small nodes).
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/json_fields.h"

namespace tandem::tokenizer {

struct BpeTables {
  std::vector<std::pair<std::string, int64_t>> vocab;       // (token, id) in file order
  std::vector<std::pair<std::string, std::string>> merges;  // (left, right) in rank order
};

struct TokenizerJson {
  Json root;         // the whole file, except that model.vocab and model.merges are null
  BpeTables tables;  // model.vocab and model.merges
  bool has_vocab = false;
  bool has_merges = false;
};

// Throws tandem::Error "<path>: ..." if the file is missing, not JSON, or has a malformed
// vocab or merges list.
[[nodiscard]] TokenizerJson read_tokenizer_json(const std::filesystem::path& path);

// One merge written as "left right" (exactly one space) appended to `merges`; "#version" lines
// are skipped. Throws naming `where` otherwise.
void append_merge_line(std::string_view line,
                       std::vector<std::pair<std::string, std::string>>& merges,
                       const std::string& where);

}  // namespace tandem::tokenizer
