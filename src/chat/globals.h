// Global functions visible to every chat template: Jinja's range(), dict(), namespace(),
// joiner() and cycler(), and the two transformers adds: raise_exception(msg) (fails the render
// with msg) and strftime_now(format) (the local time, as datetime.now().strftime).
#pragma once
#include <string_view>

#include "chat/value.h"

namespace tandem::chat {

// The global named `name`, or null. Template variables shadow globals.
[[nodiscard]] const Value* find_global(std::string_view name);

// Jinja's sandbox refuses ranges longer than this.
inline constexpr int64_t kMaxRange = 100000;

}  // namespace tandem::chat
