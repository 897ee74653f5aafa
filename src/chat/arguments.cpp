// Argument binding for builtins.
#include "chat/arguments.h"

#include "chat/template_error.h"

namespace tandem::chat {

std::vector<Value> bind_args(std::string_view function, const CallArgs& args,
                             std::initializer_list<Param> params) {
  if (args.positional.size() > params.size())
    template_fail("{}() takes at most {} arguments ({} given)", function, params.size(),
                  args.positional.size());
  std::vector<Value> bound(params.size());
  std::vector<bool> given(params.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    bound[i] = args.positional[i];
    given[i] = true;
  }
  for (const auto& [key, value] : args.keyword) {
    size_t i = 0;
    for (const Param& p : params) {
      if (p.name == key) break;
      ++i;
    }
    if (i == params.size())
      template_fail("{}() got an unexpected keyword argument '{}'", function, key);
    if (given[i]) template_fail("{}() got multiple values for argument '{}'", function, key);
    bound[i] = value;
    given[i] = true;
  }
  size_t i = 0;
  for (const Param& p : params) {
    if (!given[i]) {
      if (p.required) template_fail("{}() missing required argument '{}'", function, p.name);
      bound[i] = p.default_value;
    }
    ++i;
  }
  return bound;
}

int64_t int_arg(std::string_view function, std::string_view param, const Value& v) {
  if (v.is_bool() || v.is_int()) return v.as_int();
  template_fail("{}(): argument '{}' must be an integer, not '{}'", function, param, v.type_name());
}

const std::string& string_arg(std::string_view function, std::string_view param, const Value& v) {
  if (!v.is_string())
    template_fail("{}(): argument '{}' must be a string, not '{}'", function, param, v.type_name());
  return v.as_string();
}

}  // namespace tandem::chat
