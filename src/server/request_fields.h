// RequestFields: typed, checked reads of the fields of one JSON request object. A missing or
// null field reads as nullopt (OpenAI treats null as "not given"); a field of the wrong type or
// out of range throws ApiError 400 naming it: "'top_k' must be an integer, got \"five\"".
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tandem {

class RequestFields {
 public:
  using Json = nlohmann::ordered_json;

  // `prefix` names nested objects in messages, e.g. "stream_options.".
  explicit RequestFields(const Json& object, std::string prefix = {});

  [[nodiscard]] bool has(const char* key) const;  // present and not null
  [[nodiscard]] const Json* get(const char* key) const;  // nullptr when missing or null

  [[nodiscard]] std::optional<double> number(const char* key) const;
  [[nodiscard]] std::optional<float> number_f(const char* key) const;
  // Integers (a float with no fractional part is accepted, as by vLLM's pydantic models).
  [[nodiscard]] std::optional<int64_t> integer(const char* key) const;
  // An integer in [min, max].
  [[nodiscard]] std::optional<int> bounded_int(const char* key, int64_t min, int64_t max) const;
  [[nodiscard]] std::optional<bool> boolean(const char* key) const;
  [[nodiscard]] std::optional<std::string> string(const char* key) const;
  // A string or a list of strings ("stop").
  [[nodiscard]] std::optional<std::vector<std::string>> string_or_list(const char* key) const;
  // A list of integers in [min, max].
  [[nodiscard]] std::optional<std::vector<int32_t>> int_list(const char* key, int64_t min,
                                                             int64_t max) const;
  // An object (as a JSON value).
  [[nodiscard]] std::optional<Json> object(const char* key) const;

  // "'<prefix><key>'", for messages.
  [[nodiscard]] std::string quoted(const char* key) const;
  [[nodiscard]] std::string param(const char* key) const { return prefix_ + key; }

 private:
  [[noreturn]] void type_error(const char* key, const char* expected) const;

  const Json& object_;
  std::string prefix_;
};

// A short rendering of a JSON value for error messages (long values are cut).
std::string brief_json(const nlohmann::ordered_json& value);

}  // namespace tandem
