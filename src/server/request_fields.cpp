// RequestFields: JSON type checks with messages that name the field and show the bad value.
#include "server/request_fields.h"

#include <cmath>
#include <limits>

#include "server/openai_errors.h"

namespace tandem {

std::string brief_json(const nlohmann::ordered_json& value) {
  constexpr size_t kMaxChars = 80;
  std::string text = value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  if (text.size() > kMaxChars) text = text.substr(0, kMaxChars) + "...";
  return text;
}

RequestFields::RequestFields(const Json& object, std::string prefix)
    : object_(object), prefix_(std::move(prefix)) {}

std::string RequestFields::quoted(const char* key) const { return "'" + prefix_ + key + "'"; }

void RequestFields::type_error(const char* key, const char* expected) const {
  fail_param(param(key).c_str(), "{} must be {}, got {}", quoted(key), expected,
             brief_json(object_.at(key)));
}

const RequestFields::Json* RequestFields::get(const char* key) const {
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool RequestFields::has(const char* key) const { return get(key) != nullptr; }

std::optional<double> RequestFields::number(const char* key) const {
  const Json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) type_error(key, "a number");
  return v->get<double>();
}

std::optional<float> RequestFields::number_f(const char* key) const {
  std::optional<double> v = number(key);
  if (!v) return std::nullopt;
  if (std::abs(*v) > std::numeric_limits<float>::max()) {
    fail_param(param(key).c_str(), "{} is out of range: {}", quoted(key), *v);
  }
  return float(*v);
}

std::optional<int64_t> RequestFields::integer(const char* key) const {
  const Json* v = get(key);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() &&
        v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      fail_param(param(key).c_str(), "{} is out of range: {}", quoted(key), brief_json(*v));
    }
    return v->get<int64_t>();
  }
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9.0e18) return int64_t(d);
  }
  type_error(key, "an integer");
}

std::optional<int> RequestFields::bounded_int(const char* key, int64_t min, int64_t max) const {
  std::optional<int64_t> v = integer(key);
  if (!v) return std::nullopt;
  if (*v < min || *v > max) {
    if (max >= std::numeric_limits<int>::max()) {
      fail_param(param(key).c_str(), "{} must be at least {}, got {}", quoted(key), min, *v);
    }
    fail_param(param(key).c_str(), "{} must be between {} and {}, got {}", quoted(key), min, max,
               *v);
  }
  return int(*v);
}

std::optional<bool> RequestFields::boolean(const char* key) const {
  const Json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) type_error(key, "a boolean");
  return v->get<bool>();
}

std::optional<std::string> RequestFields::string(const char* key) const {
  const Json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) type_error(key, "a string");
  return v->get<std::string>();
}

std::optional<std::vector<std::string>> RequestFields::string_or_list(const char* key) const {
  const Json* v = get(key);
  if (!v) return std::nullopt;
  if (v->is_string()) return std::vector<std::string>{v->get<std::string>()};
  if (!v->is_array()) type_error(key, "a string or a list of strings");
  std::vector<std::string> out;
  for (const Json& item : *v) {
    if (!item.is_string()) type_error(key, "a string or a list of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::optional<std::vector<int32_t>> RequestFields::int_list(const char* key, int64_t min,
                                                            int64_t max) const {
  const Json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_array()) type_error(key, "a list of integers");
  std::vector<int32_t> out;
  out.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& item = (*v)[i];
    if (!item.is_number_integer()) type_error(key, "a list of integers");
    bool in_range = item.is_number_unsigned() ? item.get<uint64_t>() <= uint64_t(max)
                                              : item.get<int64_t>() >= min &&
                                                    item.get<int64_t>() <= max;
    if (!in_range) {
      fail_param(param(key).c_str(), "{}[{}] must be between {} and {}, got {}", quoted(key), i,
                 min, max, brief_json(item));
    }
    out.push_back(int32_t(item.get<int64_t>()));
  }
  return out;
}

std::optional<RequestFields::Json> RequestFields::object(const char* key) const {
  const Json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_object()) type_error(key, "an object");
  return *v;
}

}  // namespace tandem
