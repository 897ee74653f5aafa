// Jinja2's builtin filters (as configured by transformers: `tojson` is json.dumps with
// ensure_ascii=False) and tests. A filter maps (input, arguments) to a value; a test to a bool.
// Names unknown here are rejected at parse time (or at run time inside conditionals).
#pragma once
#include <string_view>

#include "chat/render_state.h"
#include "chat/value.h"

namespace tandem::chat {

using FilterFn = Value (*)(RenderState& state, const Value& input, CallArgs& args);
using TestFn = bool (*)(RenderState& state, const Value& input, CallArgs& args);

[[nodiscard]] FilterFn find_filter(std::string_view name);  // null when unknown
[[nodiscard]] inline bool is_known_filter(std::string_view name) {
  return find_filter(name) != nullptr;
}
// Applies a filter by name; throws TemplateError for unknown names.
Value apply_filter(RenderState& state, std::string_view name, const Value& input, CallArgs& args);

// The sequence filters (sequence_filters.cpp), registered by find_filter.
Value filter_first(RenderState&, const Value&, CallArgs&);
Value filter_last(RenderState&, const Value&, CallArgs&);
Value filter_length(RenderState&, const Value&, CallArgs&);
Value filter_list(RenderState&, const Value&, CallArgs&);
Value filter_join(RenderState&, const Value&, CallArgs&);
Value filter_map(RenderState&, const Value&, CallArgs&);
Value filter_select(RenderState&, const Value&, CallArgs&);
Value filter_reject(RenderState&, const Value&, CallArgs&);
Value filter_selectattr(RenderState&, const Value&, CallArgs&);
Value filter_rejectattr(RenderState&, const Value&, CallArgs&);
Value filter_sort(RenderState&, const Value&, CallArgs&);
Value filter_unique(RenderState&, const Value&, CallArgs&);
Value filter_dictsort(RenderState&, const Value&, CallArgs&);
Value filter_items(RenderState&, const Value&, CallArgs&);
Value filter_reverse(RenderState&, const Value&, CallArgs&);
Value filter_batch(RenderState&, const Value&, CallArgs&);
Value filter_min(RenderState&, const Value&, CallArgs&);
Value filter_max(RenderState&, const Value&, CallArgs&);
Value filter_sum(RenderState&, const Value&, CallArgs&);

}  // namespace tandem::chat
