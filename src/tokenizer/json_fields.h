// Typed look-ups into tokenizer.json / tokenizer_config.json nodes. Every error names the node's
// location (`where`, e.g. "tokenizer.json: pre_tokenizer.pretokenizers[0]") and the key.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.h"

namespace tandem::tokenizer {

using Json = nlohmann::json;

inline const Json& require_member(const Json& node, std::string_view key, std::string_view where) {
  if (!node.is_object()) fail("{}: expected an object, got {}", where, node.type_name());
  auto it = node.find(key);
  if (it == node.end()) fail("{}: missing key \"{}\"", where, key);
  return *it;
}

inline std::string require_string(const Json& node, std::string_view key, std::string_view where) {
  const Json& v = require_member(node, key, where);
  if (!v.is_string()) fail("{}.{}: expected a string, got {}", where, key, v.dump());
  return v.get<std::string>();
}

// A boolean member; missing or null gives `fallback`.
inline bool optional_bool(const Json& node, std::string_view key, std::string_view where,
                          bool fallback) {
  auto it = node.find(key);
  if (it == node.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail("{}.{}: expected true or false, got {}", where, key, it->dump());
  return it->get<bool>();
}

// A non-negative integer member that fits an int (token ids, counts).
inline int require_index(const Json& node, std::string_view key, std::string_view where) {
  const Json& v = require_member(node, key, where);
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
    fail("{}.{}: expected a non-negative integer, got {}", where, key, v.dump());
  return static_cast<int>(v.get<int64_t>());
}

inline std::string type_of(const Json& node, std::string_view where) {
  return require_string(node, "type", where);
}

}  // namespace tandem::tokenizer
