// Python's json.dumps() over Values: the `tojson` filter of transformers' chat templates is
// json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False), whose exact
// spacing (", " and ": "), escaping and float formatting prompts depend on.
#pragma once
#include <optional>
#include <string>

#include "chat/render_state.h"
#include "chat/value.h"

namespace tandem::chat {

struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // unset: one line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};

// Throws TemplateError for values JSON cannot hold (Undefined, namespaces, callables) and for
// output beyond the render's string limit.
std::string python_json_dumps(RenderState& state, const Value& v, const JsonDumpOptions& options);

}  // namespace tandem::chat
