// Python's printf-style string formatting (`'%s: %d' % (a, b)`, `'%(k)s' % d`) and Jinja's
// `format` filter built on it: conversions s r a d i u o x X e E f F g G c %, with flags,
// width and precision (including `*`).
#pragma once
#include <string>

#include "chat/render_state.h"
#include "chat/value.h"

namespace tandem::chat {

// `format % args`: args is a tuple of positional values, a dict (for %(key)s), or one value.
std::string percent_format(RenderState& state, const std::string& format, const Value& args);

}  // namespace tandem::chat
