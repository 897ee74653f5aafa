// Parser: tokens -> Program (the AST of ast.h), following Jinja2's grammar and operator
// precedence. Rejects malformed templates with a TemplateError naming the line: unclosed or
// stray block tags, unknown tags, unknown filters/tests (outside conditionals, as Jinja does),
// `break` outside a loop, and nesting deeper than kMaxNesting.
#pragma once
#include <string_view>

#include "chat/ast.h"

namespace tandem::chat {

// Deepest nesting of blocks and expressions a template may use (keeps recursion bounded).
inline constexpr int kMaxNesting = 128;

[[nodiscard]] Program parse_template(std::string_view source);

}  // namespace tandem::chat
