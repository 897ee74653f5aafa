// Checks run on a freshly parsed template (see ast_checks.cpp).
#pragma once
#include "chat/ast.h"

namespace tandem::chat {

// Sets a macro/call-block statement's uses_varargs / uses_kwargs / uses_caller from its body.
void note_special_names(Stmt& s);
// Throws TemplateError for unknown filters/tests outside `if` statements and conditional
// expressions (Jinja defers those inside conditionals to run time).
void check_unknown_names(const Body& body);

}  // namespace tandem::chat
