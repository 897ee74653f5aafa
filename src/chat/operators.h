// Operators on Values with Python semantics as seen through Jinja2's ImmutableSandbox:
// arithmetic, comparisons, `in`, attribute/item access (missing -> Undefined; any use of an
// attribute of Undefined -> error), slicing, and iteration.
#pragma once
#include <string>
#include <vector>

#include "chat/ast.h"
#include "chat/render_state.h"
#include "chat/value.h"

namespace tandem::chat {

// Raises Jinja's UndefinedError for a use of `undefined` that needs a real value.
[[noreturn]] void fail_undefined(const Value& undefined);

Value binary_op(RenderState& state, BinaryOp op, const Value& a, const Value& b);
bool compare_op(CompareOp op, const Value& a, const Value& b);
// Python `item in container`.
bool contains(const Value& container, const Value& item);
Value negate(const Value& v);
Value unary_plus(const Value& v);

// obj.name: dict keys, namespace attributes, and the safe methods of str/dict/list (as bound
// callables); unsafe methods (list.append, dict.update, ...) give an Undefined whose call fails.
Value get_attr(const Value& obj, const std::string& name);
// obj[key]: dict keys, list/str indexes (negative ok), falling back to attributes for string keys.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] for strings (by code point) and lists/tuples; absent parts are None.
Value slice_value(RenderState& state, const Value& obj, const Value& start, const Value& stop,
                  const Value& step);
// Python iter(): list items, dict keys, string characters; nothing for Undefined.
std::vector<Value> iterate(const Value& v);

}  // namespace tandem::chat
