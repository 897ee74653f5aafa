// Jinja2's builtin tests (`x is defined`, `n is divisibleby 3`, `m is mapping`, ...), with the
// exact answers Python gives (e.g. `true is number` holds, `true is integer` does not).
#pragma once
#include <string_view>

#include "chat/filters.h"

namespace tandem::chat {

[[nodiscard]] TestFn find_test(std::string_view name);  // null when unknown
[[nodiscard]] inline bool is_known_test(std::string_view name) {
  return find_test(name) != nullptr;
}
// Applies a test by name; throws TemplateError for unknown names.
bool apply_test(RenderState& state, std::string_view name, const Value& input, CallArgs& args);

}  // namespace tandem::chat
