// JSON nesting depth, measured before parsing. nlohmann's parser is iterative, but dumping,
// comparing and rendering a parsed value (error messages, chat templates, the proxy's rewritten
// bodies) recurse once per level: a body of a million '[' would overflow the stack. Request
// bodies deeper than kMaxJsonNesting are rejected before they are parsed.
#pragma once
#include <cstddef>
#include <string_view>

namespace tandem {

// Deep enough for any real request (tool schemas nest a few dozen levels at most).
inline constexpr size_t kMaxJsonNesting = 128;

// The deepest nesting of objects and arrays in `text` (brackets inside strings do not count);
// stops counting past `limit` and returns limit + 1. Works on any text, valid JSON or not.
size_t json_nesting_depth(std::string_view text, size_t limit = kMaxJsonNesting);

}  // namespace tandem
