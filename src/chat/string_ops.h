// Python str operations shared by the string methods and the Jinja filters: replace, split,
// splitlines, capitalize, title, swapcase. Sizes of results are checked against the render
// limits before they are built.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat/render_state.h"

namespace tandem::chat {

// str.replace(old, new, count); count < 0 replaces all.
std::string py_replace(RenderState& state, std::string_view s, std::string_view old_text,
                       std::string_view new_text, int64_t count);
// str.split(sep, maxsplit) / str.rsplit: sep unset splits on runs of whitespace. Throws
// TemplateError past max_parts parts.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right, size_t max_parts);
// str.splitlines(keepends).
std::vector<std::string> py_splitlines(std::string_view s, bool keepends, size_t max_parts);
std::string py_capitalize(std::string_view s);
// str.title(): a letter is upper-cased after a non-letter, lower-cased after a letter.
std::string py_title(std::string_view s);
std::string py_swapcase(std::string_view s);
// Code point index of a byte offset into s.
size_t code_point_index(std::string_view s, size_t byte_offset);

}  // namespace tandem::chat
