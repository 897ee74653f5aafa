// Python-style argument binding for builtin filters, tests, methods and globals: positional
// arguments fill parameters in order, keywords by name; unknown keywords, surplus positionals
// and missing required parameters raise TemplateError naming the function.
#pragma once
#include <initializer_list>
#include <string_view>
#include <vector>

#include "chat/value.h"

namespace tandem::chat {

struct Param {
  std::string_view name;
  Value default_value;  // used when the argument is not passed
  bool required = false;
};

inline Param required(std::string_view name) { return Param{name, Value(), true}; }
inline Param optional(std::string_view name, Value default_value) {
  return Param{name, std::move(default_value), false};
}

// Returns one value per parameter, in parameter order.
std::vector<Value> bind_args(std::string_view function, const CallArgs& args,
                             std::initializer_list<Param> params);

// The integer value of an argument (bool or int, as Python's __index__); throws otherwise.
int64_t int_arg(std::string_view function, std::string_view param, const Value& v);
// The string value of an argument; throws otherwise.
const std::string& string_arg(std::string_view function, std::string_view param, const Value& v);

}  // namespace tandem::chat
