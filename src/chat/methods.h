// Methods callable on values from templates (`s.strip()`, `d.items()`, `l.index(x)`): the
// side-effect-free methods of Python's str, dict and list. Mutating methods (list.append,
// dict.update, ...) are "unsafe", as in Jinja's ImmutableSandboxedEnvironment: looking them up
// gives an Undefined whose call raises a security error.
#pragma once
#include <string>
#include <string_view>

#include "chat/render_state.h"
#include "chat/value.h"

namespace tandem::chat {

enum class MethodKind { kNone, kSafe, kUnsafe };

[[nodiscard]] MethodKind find_method(const Value& obj, std::string_view name);
// Calls a method that find_method reported kSafe.
Value call_method(RenderState& state, const Value& obj, std::string_view name, CallArgs& args);
// obj.name as a callable value (a bound method).
Value bind_method(const Value& obj, const std::string& name);

}  // namespace tandem::chat
