// The str / dict / list methods templates may call.
#include "chat/methods.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "chat/arguments.h"
#include "chat/operators.h"
#include "chat/string_ops.h"
#include "chat/template_error.h"
#include "chat/utf8.h"

namespace tandem::chat {
namespace {

using MethodFn = Value (*)(RenderState&, const Value& self, CallArgs& args);
using MethodTable = std::unordered_map<std::string_view, MethodFn>;

std::optional<std::string> optional_string(std::string_view fn, const Value& v) {
  if (v.is_none() || v.is_undefined()) return std::nullopt;
  return string_arg(fn, "sep", v);
}

Value string_list(RenderState& state, std::vector<std::string> parts) {
  state.check_list_size(parts.size());
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.push_back(Value::string(std::move(p)));
  return Value::list(std::move(items));
}

Value strip_method(const Value& self, CallArgs& args, std::string_view fn, StripSide side) {
  const auto a = bind_args(fn, args, {optional("chars", Value::none())});
  if (a[0].is_none()) return Value::string(strip(self.as_string(), side));
  const std::u32string chars = decode_utf8(string_arg(fn, "chars", a[0]));
  return Value::string(strip(self.as_string(), side, &chars));
}

Value split_method(RenderState& state, const Value& self, CallArgs& args, bool from_right) {
  const char* fn = from_right ? "rsplit" : "split";
  const auto a = bind_args(
      fn, args, {optional("sep", Value::none()), optional("maxsplit", Value::integer(-1))});
  return string_list(
      state, py_split(self.as_string(), optional_string(fn, a[0]), int_arg(fn, "maxsplit", a[1]),
                      from_right, state.limits().max_list_items));
}

// startswith/endswith: the prefix may be a tuple of alternatives.
Value affix_method(const Value& self, CallArgs& args, bool prefix) {
  const char* fn = prefix ? "startswith" : "endswith";
  const auto a = bind_args(fn, args, {required(prefix ? "prefix" : "suffix")});
  const std::string& s = self.as_string();
  const auto matches = [&](const Value& v) {
    const std::string& affix = string_arg(fn, "prefix", v);
    return prefix ? s.starts_with(affix) : s.ends_with(affix);
  };
  if (a[0].is_tuple()) {
    for (const Value& v : a[0].as_list())
      if (matches(v)) return Value::boolean(true);
    return Value::boolean(false);
  }
  return Value::boolean(matches(a[0]));
}

// find/rfind/index/rindex: the code point index of sub, or -1 / an error.
Value find_method_impl(const Value& self, CallArgs& args, std::string_view fn, bool from_right,
                       bool raise) {
  const auto a = bind_args(fn, args, {required("sub")});
  const std::string& s = self.as_string();
  const std::string& sub = string_arg(fn, "sub", a[0]);
  const size_t hit = from_right ? s.rfind(sub) : s.find(sub);
  if (hit == std::string::npos) {
    if (raise) template_fail("substring not found");
    return Value::integer(-1);
  }
  return Value::integer(static_cast<int64_t>(code_point_index(s, hit)));
}

Value pad_method(RenderState& state, const Value& self, CallArgs& args, std::string_view fn) {
  const auto a = bind_args(fn, args, {required("width"), optional("fillchar", Value::string(" "))});
  const int64_t width = int_arg(fn, "width", a[0]);
  const std::string& fill = string_arg(fn, "fillchar", a[1]);
  if (utf8_length(fill) != 1)
    template_fail("{}(): the fill character must be exactly one character long", fn);
  const std::string& s = self.as_string();
  const auto len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return self;
  const auto margin = static_cast<size_t>(width - len);
  state.check_string_size(s.size() + margin * fill.size());
  size_t left = 0;
  if (fn == "center") {
    left = margin / 2 + (margin & static_cast<size_t>(width) & 1);
  } else if (fn == "rjust") {
    left = margin;
  }
  std::string out;
  for (size_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (size_t i = left; i < margin; ++i) out += fill;
  state.charge_bytes(out.size());
  return Value::string(std::move(out));
}

template <bool (*Pred)(char32_t)>
Value all_chars(const Value& self, CallArgs& args, std::string_view fn) {
  bind_args(fn, args, {});
  const std::string& s = self.as_string();
  if (s.empty()) return Value::boolean(false);
  size_t pos = 0;
  while (pos < s.size())
    if (!Pred(next_code_point(s, pos))) return Value::boolean(false);
  return Value::boolean(true);
}

bool is_alnum(char32_t cp) { return is_alpha(cp) || is_digit(cp); }

// isupper/islower: at least one cased character and no cased character of the other case.
Value case_test(const Value& self, CallArgs& args, bool upper) {
  bind_args(upper ? "isupper" : "islower", args, {});
  bool any = false;
  const std::string& s = self.as_string();
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t cp = next_code_point(s, pos);
    if ((upper && is_lower(cp)) || (!upper && is_upper(cp))) return Value::boolean(false);
    any |= upper ? is_upper(cp) : is_lower(cp);
  }
  return Value::boolean(any);
}

Value join_method(RenderState& state, const Value& self, CallArgs& args) {
  const auto a = bind_args("join", args, {required("iterable")});
  if (a[0].is_undefined()) return Value::string("");
  const std::vector<Value> items = [&] {
    if (a[0].is_list() || a[0].is_dict() || a[0].is_string()) return iterate(a[0]);
    template_fail("can only join an iterable");
  }();
  size_t total = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_string())
      template_fail("sequence item {}: expected str instance, {} found", i, items[i].type_name());
    total += items[i].as_string().size() + self.as_string().size();
  }
  state.check_string_size(total);
  state.charge_bytes(total);
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += self.as_string();
    out += items[i].as_string();
  }
  return Value::string(std::move(out));
}

Value partition_method(const Value& self, CallArgs& args, bool from_right) {
  const char* fn = from_right ? "rpartition" : "partition";
  const auto a = bind_args(fn, args, {required("sep")});
  const std::string& s = self.as_string();
  const std::string& sep = string_arg(fn, "sep", a[0]);
  if (sep.empty()) template_fail("empty separator");
  const size_t hit = from_right ? s.rfind(sep) : s.find(sep);
  if (hit == std::string::npos) {
    return from_right ? Value::tuple({Value::string(""), Value::string(""), self})
                      : Value::tuple({self, Value::string(""), Value::string("")});
  }
  return Value::tuple({Value::string(s.substr(0, hit)), Value::string(sep),
                       Value::string(s.substr(hit + sep.size()))});
}

Value affix_remove(const Value& self, CallArgs& args, bool prefix) {
  const char* fn = prefix ? "removeprefix" : "removesuffix";
  const auto a = bind_args(fn, args, {required(prefix ? "prefix" : "suffix")});
  const std::string& s = self.as_string();
  const std::string& affix = string_arg(fn, "prefix", a[0]);
  if (prefix && s.starts_with(affix)) return Value::string(s.substr(affix.size()));
  if (!prefix && s.ends_with(affix)) return Value::string(s.substr(0, s.size() - affix.size()));
  return self;
}

Value string_transform(const Value& self, CallArgs& args, std::string_view fn,
                       std::string (*transform)(std::string_view)) {
  bind_args(fn, args, {});
  return Value::string(transform(self.as_string()));
}

const MethodTable& string_methods() {
  static const MethodTable table = {
      {"strip", [](RenderState&, const Value& s,
                   CallArgs& a) { return strip_method(s, a, "strip", StripSide::kBoth); }},
      {"lstrip", [](RenderState&, const Value& s,
                    CallArgs& a) { return strip_method(s, a, "lstrip", StripSide::kLeft); }},
      {"rstrip", [](RenderState&, const Value& s,
                    CallArgs& a) { return strip_method(s, a, "rstrip", StripSide::kRight); }},
      {"split",
       [](RenderState& st, const Value& s, CallArgs& a) { return split_method(st, s, a, false); }},
      {"rsplit",
       [](RenderState& st, const Value& s, CallArgs& a) { return split_method(st, s, a, true); }},
      {"splitlines",
       [](RenderState& st, const Value& s, CallArgs& a) {
         const auto b = bind_args("splitlines", a, {optional("keepends", Value::boolean(false))});
         return string_list(
             st, py_splitlines(s.as_string(), b[0].truthy(), st.limits().max_list_items));
       }},
      {"startswith",
       [](RenderState&, const Value& s, CallArgs& a) { return affix_method(s, a, true); }},
      {"endswith",
       [](RenderState&, const Value& s, CallArgs& a) { return affix_method(s, a, false); }},
      {"upper", [](RenderState&, const Value& s,
                   CallArgs& a) { return string_transform(s, a, "upper", &to_upper); }},
      {"lower", [](RenderState&, const Value& s,
                   CallArgs& a) { return string_transform(s, a, "lower", &to_lower); }},
      {"casefold", [](RenderState&, const Value& s,
                      CallArgs& a) { return string_transform(s, a, "casefold", &to_lower); }},
      {"title", [](RenderState&, const Value& s,
                   CallArgs& a) { return string_transform(s, a, "title", &py_title); }},
      {"capitalize",
       [](RenderState&, const Value& s, CallArgs& a) {
         return string_transform(s, a, "capitalize", &py_capitalize);
       }},
      {"swapcase", [](RenderState&, const Value& s,
                      CallArgs& a) { return string_transform(s, a, "swapcase", &py_swapcase); }},
      {"replace",
       [](RenderState& st, const Value& s, CallArgs& a) {
         const auto b =
             bind_args("replace", a,
                       {required("old"), required("new"), optional("count", Value::integer(-1))});
         return Value::string(py_replace(st, s.as_string(), string_arg("replace", "old", b[0]),
                                         string_arg("replace", "new", b[1]),
                                         int_arg("replace", "count", b[2])));
       }},
      {"find", [](RenderState&, const Value& s,
                  CallArgs& a) { return find_method_impl(s, a, "find", false, false); }},
      {"rfind", [](RenderState&, const Value& s,
                   CallArgs& a) { return find_method_impl(s, a, "rfind", true, false); }},
      {"index", [](RenderState&, const Value& s,
                   CallArgs& a) { return find_method_impl(s, a, "index", false, true); }},
      {"rindex", [](RenderState&, const Value& s,
                    CallArgs& a) { return find_method_impl(s, a, "rindex", true, true); }},
      {"count",
       [](RenderState&, const Value& s, CallArgs& a) {
         const auto b = bind_args("count", a, {required("sub")});
         const std::string& sub = string_arg("count", "sub", b[0]);
         const std::string& str = s.as_string();
         if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_length(str) + 1));
         int64_t n = 0;
         for (size_t at = str.find(sub); at != std::string::npos;
              at = str.find(sub, at + sub.size()))
           ++n;
         return Value::integer(n);
       }},
      {"join", [](RenderState& st, const Value& s, CallArgs& a) { return join_method(st, s, a); }},
      {"center",
       [](RenderState& st, const Value& s, CallArgs& a) { return pad_method(st, s, a, "center"); }},
      {"ljust",
       [](RenderState& st, const Value& s, CallArgs& a) { return pad_method(st, s, a, "ljust"); }},
      {"rjust",
       [](RenderState& st, const Value& s, CallArgs& a) { return pad_method(st, s, a, "rjust"); }},
      {"zfill",
       [](RenderState& st, const Value& s, CallArgs& a) {
         const auto b = bind_args("zfill", a, {required("width")});
         const std::string& str = s.as_string();
         const int64_t width = int_arg("zfill", "width", b[0]);
         const auto len = static_cast<int64_t>(utf8_length(str));
         if (width <= len) return s;
         st.check_string_size(static_cast<size_t>(width));
         const size_t sign = !str.empty() && (str[0] == '+' || str[0] == '-') ? 1 : 0;
         return Value::string(str.substr(0, sign) +
                              std::string(static_cast<size_t>(width - len), '0') +
                              str.substr(sign));
       }},
      {"removeprefix",
       [](RenderState&, const Value& s, CallArgs& a) { return affix_remove(s, a, true); }},
      {"removesuffix",
       [](RenderState&, const Value& s, CallArgs& a) { return affix_remove(s, a, false); }},
      {"partition",
       [](RenderState&, const Value& s, CallArgs& a) { return partition_method(s, a, false); }},
      {"rpartition",
       [](RenderState&, const Value& s, CallArgs& a) { return partition_method(s, a, true); }},
      {"isdigit", [](RenderState&, const Value& s,
                     CallArgs& a) { return all_chars<is_digit>(s, a, "isdigit"); }},
      {"isnumeric", [](RenderState&, const Value& s,
                       CallArgs& a) { return all_chars<is_digit>(s, a, "isnumeric"); }},
      {"isdecimal", [](RenderState&, const Value& s,
                       CallArgs& a) { return all_chars<is_digit>(s, a, "isdecimal"); }},
      {"isalpha", [](RenderState&, const Value& s,
                     CallArgs& a) { return all_chars<is_alpha>(s, a, "isalpha"); }},
      {"isalnum", [](RenderState&, const Value& s,
                     CallArgs& a) { return all_chars<is_alnum>(s, a, "isalnum"); }},
      {"isspace", [](RenderState&, const Value& s,
                     CallArgs& a) { return all_chars<is_space>(s, a, "isspace"); }},
      {"isupper", [](RenderState&, const Value& s, CallArgs& a) { return case_test(s, a, true); }},
      {"islower", [](RenderState&, const Value& s, CallArgs& a) { return case_test(s, a, false); }},
      {"format",
       [](RenderState&, const Value&, CallArgs&) -> Value {
         template_fail("str.format() is not supported in chat templates; use '~' or '%'");
       }},
  };
  return table;
}

Value dict_items(const Value& self) {
  std::vector<Value> items;
  items.reserve(self.as_dict().size());
  for (const auto& [k, v] : self.as_dict().entries()) items.push_back(Value::tuple({k, v}));
  return Value::sequence(std::move(items), SeqKind::kItemsView);
}

const MethodTable& dict_methods() {
  static const MethodTable table = {
      {"items",
       [](RenderState&, const Value& d, CallArgs& a) {
         bind_args("items", a, {});
         return dict_items(d);
       }},
      {"keys",
       [](RenderState&, const Value& d, CallArgs& a) {
         bind_args("keys", a, {});
         return Value::sequence(iterate(d), SeqKind::kKeysView);
       }},
      {"values",
       [](RenderState&, const Value& d, CallArgs& a) {
         bind_args("values", a, {});
         std::vector<Value> values;
         for (const auto& entry : d.as_dict().entries()) values.push_back(entry.second);
         return Value::sequence(std::move(values), SeqKind::kValuesView);
       }},
      {"get",
       [](RenderState&, const Value& d, CallArgs& a) {
         const auto b = bind_args("get", a, {required("key"), optional("default", Value::none())});
         check_hashable(b[0]);
         const Value* v = d.as_dict().find(b[0]);
         return v != nullptr ? *v : b[1];
       }},
      {"copy",
       [](RenderState&, const Value& d, CallArgs& a) {
         bind_args("copy", a, {});
         return d;
       }},
  };
  return table;
}

const MethodTable& list_methods() {
  static const MethodTable table = {
      {"index",
       [](RenderState&, const Value& l, CallArgs& a) {
         const auto b = bind_args("index", a, {required("value")});
         const auto& items = l.as_list();
         for (size_t i = 0; i < items.size(); ++i)
           if (values_equal(items[i], b[0])) return Value::integer(static_cast<int64_t>(i));
         template_fail("{} is not in list", python_repr(b[0]));
       }},
      {"count",
       [](RenderState&, const Value& l, CallArgs& a) {
         const auto b = bind_args("count", a, {required("value")});
         return Value::integer(
             std::count_if(l.as_list().begin(), l.as_list().end(),
                           [&](const Value& v) { return values_equal(v, b[0]); }));
       }},
      {"copy",
       [](RenderState&, const Value& l, CallArgs& a) {
         bind_args("copy", a, {});
         return l;
       }},
  };
  return table;
}

const MethodTable* table_for(const Value& obj) {
  switch (obj.kind()) {
    case ValueKind::kString:
      return &string_methods();
    case ValueKind::kDict:
      return &dict_methods();
    case ValueKind::kList:
      return obj.is_list_or_tuple() ? &list_methods() : nullptr;
    default:
      return nullptr;
  }
}

bool is_unsafe(const Value& obj, std::string_view name) {
  static const std::unordered_set<std::string_view> kList = {
      "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"};
  static const std::unordered_set<std::string_view> kDict = {"pop", "popitem", "update",
                                                             "setdefault", "clear"};
  if (obj.is_plain_list()) return kList.contains(name);
  if (obj.is_dict()) return kDict.contains(name);
  return false;
}

}  // namespace

MethodKind find_method(const Value& obj, std::string_view name) {
  const MethodTable* table = table_for(obj);
  if (table == nullptr) return MethodKind::kNone;
  if (table->contains(name)) return MethodKind::kSafe;
  return is_unsafe(obj, name) ? MethodKind::kUnsafe : MethodKind::kNone;
}

Value call_method(RenderState& state, const Value& obj, std::string_view name, CallArgs& args) {
  const MethodTable* table = table_for(obj);
  const auto it = table != nullptr ? table->find(name) : MethodTable::const_iterator{};
  if (table == nullptr || it == table->end())
    template_fail("'{}' object has no method '{}'", obj.type_name(), name);
  return it->second(state, obj, args);
}

Value bind_method(const Value& obj, const std::string& name) {
  return Value::callable(fmt::format("{}.{}", obj.type_name(), name),
                         [obj, name](RenderState& state, CallArgs& args) {
                           return call_method(state, obj, name, args);
                         });
}

}  // namespace tandem::chat
