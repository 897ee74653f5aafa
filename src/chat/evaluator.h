// Evaluator: executes a parsed Program against a scope, writing the rendered text. Implements
// Jinja2's statement semantics (if/for/set/macro/call/filter/with, loop variables, break and
// continue, scoping: a for-loop iteration or macro call gets its own scope; `if` does not) and
// expression evaluation over Values. Every failure becomes a TemplateError naming the line.
#pragma once
#include <memory>
#include <string>

#include "chat/ast.h"
#include "chat/render_state.h"

namespace tandem::chat {

// Renders `program` with `root` as the template scope, appending to `out`.
void render_program(RenderState& state, const Program& program, std::shared_ptr<Scope> root,
                    std::string& out);

}  // namespace tandem::chat
