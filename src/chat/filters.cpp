// The filter registry and the scalar/string filters (sequence filters: sequence_filters.cpp).
#include "chat/filters.h"

#include <cmath>
#include <cstdlib>
#include <unordered_map>

#include "chat/arguments.h"
#include "chat/operators.h"
#include "chat/percent_format.h"
#include "chat/python_json.h"
#include "chat/string_ops.h"
#include "chat/template_error.h"
#include "chat/utf8.h"

namespace tandem::chat {
namespace {

Value str_value(std::string s) { return Value::string(std::move(s)); }

Value filter_default(RenderState&, const Value& v, CallArgs& args) {
  const auto a = bind_args(
      "default", args,
      {optional("default_value", Value::string("")), optional("boolean", Value::boolean(false))});
  if (v.is_undefined() || (a[1].truthy() && !v.truthy())) return a[0];
  return v;
}

Value filter_trim(RenderState&, const Value& v, CallArgs& args) {
  const auto a = bind_args("trim", args, {optional("chars", Value::none())});
  if (a[0].is_none()) return str_value(strip(to_python_str(v), StripSide::kBoth));
  const std::u32string chars = decode_utf8(string_arg("trim", "chars", a[0]));
  return str_value(strip(to_python_str(v), StripSide::kBoth, &chars));
}

template <std::string (*Transform)(std::string_view)>
Value string_filter(RenderState&, const Value& v, CallArgs& args) {
  bind_args("filter", args, {});
  return str_value(Transform(to_python_str(v)));
}

// Jinja's title: capitalizes each run between separators in `-`, whitespace, `(`, `{`, `[`, `<`.
std::string jinja_title(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  bool run_start = true;
  bool in_separator = false;
  while (pos < s.size()) {
    const char32_t cp = next_code_point(s, pos);
    const bool separator =
        is_space(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
    if (separator != in_separator) run_start = true;
    in_separator = separator;
    append_utf8(out, run_start ? to_upper(cp) : to_lower(cp));
    run_start = false;
  }
  return out;
}

Value filter_replace(RenderState& state, const Value& v, CallArgs& args) {
  const auto a = bind_args("replace", args,
                           {required("old"), required("new"), optional("count", Value::none())});
  const int64_t count = a[2].is_none() ? -1 : int_arg("replace", "count", a[2]);
  return str_value(
      py_replace(state, to_python_str(v), to_python_str(a[0]), to_python_str(a[1]), count));
}

Value filter_indent(RenderState& state, const Value& v, CallArgs& args) {
  const auto a =
      bind_args("indent", args,
                {optional("width", Value::integer(4)), optional("first", Value::boolean(false)),
                 optional("blank", Value::boolean(false))});
  std::string indention;
  if (a[0].is_string()) {
    indention = a[0].as_string();
  } else {
    const int64_t width = int_arg("indent", "width", a[0]);
    state.check_string_size(static_cast<size_t>(std::max<int64_t>(width, 0)));
    indention.assign(static_cast<size_t>(std::max<int64_t>(width, 0)), ' ');
  }
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_string())  // Jinja appends "\n" to the input: only strings work
    template_fail("unsupported operand type(s) for +=: '{}' and 'str'", v.type_name());
  const std::vector<std::string> lines =
      py_splitlines(v.as_string() + "\n", false, state.limits().max_list_items);
  size_t total = 0;
  for (const auto& line : lines) total += line.size() + indention.size() + 1;
  state.check_string_size(total);
  state.charge_bytes(total);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out.push_back('\n');
    const bool indent_line = i > 0 && (a[2].truthy() || !lines[i].empty());
    if (indent_line) out += indention;
    out += lines[i];
  }
  if (a[1].truthy()) out = indention + out;
  return str_value(std::move(out));
}

Value filter_center(RenderState& state, const Value& v, CallArgs& args) {
  const auto a = bind_args("center", args, {optional("width", Value::integer(80))});
  const std::string s = to_python_str(v);
  const int64_t width = int_arg("center", "width", a[0]);
  const auto len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return str_value(s);
  state.check_string_size(static_cast<size_t>(width) + s.size());
  const auto margin = static_cast<size_t>(width - len);
  const size_t left = margin / 2 + (margin & static_cast<size_t>(width) & 1);
  return str_value(std::string(left, ' ') + s + std::string(margin - left, ' '));
}

Value filter_tojson(RenderState& state, const Value& v, CallArgs& args) {
  const auto a = bind_args(
      "tojson", args,
      {optional("ensure_ascii", Value::boolean(false)), optional("indent", Value::none()),
       optional("separators", Value::none()), optional("sort_keys", Value::boolean(false))});
  JsonDumpOptions options;
  options.ensure_ascii = a[0].truthy();
  options.sort_keys = a[3].truthy();
  if (a[1].is_string()) {
    options.indent = a[1].as_string();
  } else if (!a[1].is_none()) {
    const int64_t width = std::max<int64_t>(int_arg("tojson", "indent", a[1]), 0);
    state.check_string_size(static_cast<size_t>(width));
    options.indent = std::string(static_cast<size_t>(width), ' ');
  }
  if (options.indent.has_value()) options.item_separator = ",";
  if (!a[2].is_none()) {
    if (!a[2].is_list() || a[2].as_list().size() != 2)
      template_fail("tojson(): separators must be an (item_separator, key_separator) pair");
    options.item_separator = string_arg("tojson", "separators", a[2].as_list()[0]);
    options.key_separator = string_arg("tojson", "separators", a[2].as_list()[1]);
  }
  return str_value(python_json_dumps(state, v, options));
}

Value filter_string(RenderState& state, const Value& v, CallArgs& args) {
  bind_args("string", args, {});
  std::string s = to_python_str(v);
  state.charge_bytes(s.size());
  return str_value(std::move(s));
}

// Python int(str, base): optional sign, digits with single underscores, optional 0x/0o/0b.
std::optional<int64_t> parse_python_int(std::string_view text, int64_t base) {
  if (base != 0 && (base < 2 || base > 36)) return std::nullopt;
  std::string s = strip(text, StripSide::kBoth);
  bool negative = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  if (i + 1 < s.size() && s[i] == '0') {
    const char p = static_cast<char>(s[i + 1] | 0x20);
    const int prefixed = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (prefixed != 0 && (base == prefixed || base == 0)) {
      base = prefixed;
      i += 2;
      if (i < s.size() && s[i] == '_') ++i;
    }
  }
  if (base == 0) base = 10;
  int64_t value = 0;
  bool any = false;
  for (; i < s.size(); ++i) {
    if (s[i] == '_' && any && i + 1 < s.size() && s[i + 1] != '_') continue;
    const char c = static_cast<char>(s[i] | 0x20);
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'z' ? c - 'a' + 10 : 99;
    if (d >= base) return std::nullopt;
    if (__builtin_mul_overflow(value, base, &value) || __builtin_add_overflow(value, d, &value))
      return std::nullopt;
    any = true;
  }
  if (!any) return std::nullopt;
  return negative ? -value : value;
}

// Python float(str): decimal or exponent notation, inf/nan; no hex floats.
std::optional<double> parse_python_float(std::string_view text) {
  std::string s = strip(text, StripSide::kBoth);
  std::erase(s, '_');
  if (s.empty() || s.find_first_of("xXpP") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return d;
}

Value filter_int(RenderState&, const Value& v, CallArgs& args) {
  const auto a = bind_args(
      "int", args, {optional("default", Value::integer(0)), optional("base", Value::integer(10))});
  if (v.is_undefined()) fail_undefined(v);  // int(Undefined) raises in Jinja
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_string()) {
    if (auto i = parse_python_int(v.as_string(), int_arg("int", "base", a[1])))
      return Value::integer(*i);
  }
  std::optional<double> d;
  if (v.is_float()) d = v.as_float();
  if (v.is_string()) d = parse_python_float(v.as_string());
  if (d.has_value() && std::isfinite(*d) && std::fabs(*d) < 9.2e18)
    return Value::integer(static_cast<int64_t>(*d));
  return a[0];
}

Value filter_float(RenderState&, const Value& v, CallArgs& args) {
  const auto a = bind_args("float", args, {optional("default", Value::floating(0.0))});
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_number()) return Value::floating(v.as_float());
  if (v.is_string()) {
    if (auto d = parse_python_float(v.as_string())) return Value::floating(*d);
  }
  return a[0];
}

Value filter_abs(RenderState&, const Value& v, CallArgs& args) {
  bind_args("abs", args, {});
  if (v.is_float()) return Value::floating(std::fabs(v.as_float()));
  if (!v.is_number()) template_fail("bad operand type for abs(): '{}'", v.type_name());
  if (v.as_int() == INT64_MIN) template_fail("integer overflow");
  return Value::integer(std::llabs(v.as_int()));
}

// Python round(x, ndigits): correctly rounded, ties to even.
Value python_round(const Value& v, int64_t ndigits) {
  if (!v.is_float()) {
    if (ndigits >= 0) return Value::integer(v.as_int());
    if (ndigits < -18) return Value::integer(0);
    int64_t m = 1;
    for (int64_t i = 0; i < -ndigits; ++i) m *= 10;
    const int64_t x = v.as_int();
    int64_t q = x / m;
    int64_t r = x % m;
    if (r < 0) {
      r += m;
      --q;
    }
    if (2 * r > m || (2 * r == m && (q & 1))) ++q;
    int64_t result = 0;
    if (__builtin_mul_overflow(q, m, &result)) template_fail("integer overflow");
    return Value::integer(result);
  }
  const double x = v.as_float();
  if (!std::isfinite(x) || ndigits > 323) return v;
  if (ndigits >= 0) {
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(ndigits), x);
    return Value::floating(std::strtod(buf, nullptr));
  }
  if (ndigits < -308) return Value::floating(std::copysign(0.0, x));
  const double scale = std::pow(10.0, static_cast<double>(-ndigits));
  return Value::floating(std::nearbyint(x / scale) * scale);
}

Value filter_round(RenderState&, const Value& v, CallArgs& args) {
  const auto a = bind_args(
      "round", args,
      {optional("precision", Value::integer(0)), optional("method", Value::string("common"))});
  const std::string& method = string_arg("round", "method", a[1]);
  const int64_t precision = int_arg("round", "precision", a[0]);
  if (method != "common" && method != "ceil" && method != "floor")
    template_fail("method must be common, ceil or floor");
  if (!v.is_number()) template_fail("type {} doesn't define __round__ method", v.type_name());
  if (method == "common") return python_round(v, precision);
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = v.as_float() * scale;
  return Value::floating((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value filter_escape(RenderState& state, const Value& v, CallArgs& args) {
  bind_args("escape", args, {});
  std::string out;
  for (char c : to_python_str(v)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  state.charge_bytes(out.size());
  return str_value(std::move(out));
}

Value filter_format(RenderState& state, const Value& v, CallArgs& args) {
  if (!args.positional.empty() && !args.keyword.empty())
    template_fail("can't handle positional and keyword arguments at the same time");
  if (!args.keyword.empty()) {
    Dict d;
    for (auto& [k, val] : args.keyword) d.set(Value::string(k), val);
    return str_value(percent_format(state, to_python_str(v), Value::dict(std::move(d))));
  }
  return str_value(percent_format(state, to_python_str(v), Value::tuple(args.positional)));
}

Value filter_attr(RenderState&, const Value& v, CallArgs& args) {
  const auto a = bind_args("attr", args, {required("name")});
  return get_attr(v, string_arg("attr", "name", a[0]));
}

Value filter_truncate(RenderState& state, const Value& v, CallArgs& args) {
  CallArgs no_args;
  const auto a = bind_args(
      "truncate", args,
      {optional("length", Value::integer(255)), optional("killwords", Value::boolean(false)),
       optional("end", Value::string("...")), optional("leeway", Value::none())});
  const int64_t length = int_arg("truncate", "length", a[0]);
  const std::string& end = string_arg("truncate", "end", a[2]);
  const int64_t leeway = a[3].is_none() ? 5 : int_arg("truncate", "leeway", a[3]);
  const auto end_len = static_cast<int64_t>(utf8_length(end));
  if (length < end_len) template_fail("expected length >= {}, got {}", end_len, length);
  if (leeway < 0) template_fail("expected leeway >= 0, got {}", leeway);
  if (!v.is_string()) {  // Jinja takes len() and slices: short sequences pass through
    const Value len = filter_length(state, v, no_args);
    if (len.as_int() <= length + leeway) return v;
    template_fail("truncate() expects a string, not '{}'", v.type_name());
  }
  const std::string& s = v.as_string();
  const std::vector<size_t> offsets = code_point_offsets(s);
  const auto n = static_cast<int64_t>(offsets.size()) - 1;
  if (n <= length + leeway) return str_value(s);
  std::string head = s.substr(0, offsets[static_cast<size_t>(length - end_len)]);
  if (!a[1].truthy()) {
    const size_t space = head.rfind(' ');
    if (space != std::string::npos) head.resize(space);
  }
  return str_value(head + end);
}

Value filter_wordcount(RenderState&, const Value& v, CallArgs& args) {
  bind_args("wordcount", args, {});
  const std::string s = to_python_str(v);
  int64_t words = 0;
  bool in_word = false;
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t cp = next_code_point(s, pos);
    const bool word_char = is_alpha(cp) || is_digit(cp) || cp == '_';
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return Value::integer(words);
}

Value filter_safe(RenderState&, const Value& v, CallArgs& args) {
  bind_args("safe", args, {});
  return str_value(to_python_str(v));
}

const std::unordered_map<std::string_view, FilterFn>& filter_registry() {
  static const std::unordered_map<std::string_view, FilterFn> table = {
      {"abs", filter_abs},
      {"attr", filter_attr},
      {"batch", filter_batch},
      {"capitalize", string_filter<py_capitalize>},
      {"center", filter_center},
      {"count", filter_length},
      {"d", filter_default},
      {"default", filter_default},
      {"dictsort", filter_dictsort},
      {"e", filter_escape},
      {"escape", filter_escape},
      {"first", filter_first},
      {"float", filter_float},
      {"forceescape", filter_escape},
      {"format", filter_format},
      {"indent", filter_indent},
      {"int", filter_int},
      {"items", filter_items},
      {"join", filter_join},
      {"last", filter_last},
      {"length", filter_length},
      {"list", filter_list},
      {"lower", string_filter<to_lower>},
      {"map", filter_map},
      {"max", filter_max},
      {"min", filter_min},
      {"reject", filter_reject},
      {"rejectattr", filter_rejectattr},
      {"replace", filter_replace},
      {"reverse", filter_reverse},
      {"round", filter_round},
      {"safe", filter_safe},
      {"select", filter_select},
      {"selectattr", filter_selectattr},
      {"sort", filter_sort},
      {"string", filter_string},
      {"sum", filter_sum},
      {"title", string_filter<jinja_title>},
      {"tojson", filter_tojson},
      {"trim", filter_trim},
      {"truncate", filter_truncate},
      {"unique", filter_unique},
      {"upper", string_filter<to_upper>},
      {"wordcount", filter_wordcount},
  };
  return table;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  const auto it = filter_registry().find(name);
  return it == filter_registry().end() ? nullptr : it->second;
}

Value apply_filter(RenderState& state, std::string_view name, const Value& input, CallArgs& args) {
  const FilterFn fn = find_filter(name);
  if (fn == nullptr) template_fail("No filter named '{}'.", name);
  return fn(state, input, args);
}

}  // namespace tandem::chat
