// Sequence filters: first/last/length/list/join/map/select/reject/sort/unique/dictsort/items/
// reverse/batch/min/max/sum, with Jinja2's attribute look-up (`attribute='a.b'`, case-insensitive
// string keys by default).
#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "chat/arguments.h"
#include "chat/filters.h"
#include "chat/operators.h"
#include "chat/string_ops.h"
#include "chat/template_error.h"
#include "chat/template_tests.h"
#include "chat/utf8.h"

namespace tandem::chat {
namespace {

enum class CaseMode { kSensitive, kIgnore };

Value fold_case(const Value& v, CaseMode mode) {
  if (mode == CaseMode::kIgnore && v.is_string()) return Value::string(to_lower(v.as_string()));
  return v;
}

// Jinja's make_attrgetter: `attribute` is "a.b.0" (digits index lists) or one key; each part
// is looked up with obj[part] semantics.
class AttrGetter {
 public:
  AttrGetter(const Value& attribute, CaseMode mode, Value default_value = Value())
      : mode_(mode), default_(std::move(default_value)) {
    if (attribute.is_none() || attribute.is_undefined()) return;
    if (!attribute.is_string()) {
      parts_.push_back(attribute);
      return;
    }
    const std::string& s = attribute.as_string();
    size_t start = 0;
    while (true) {
      const size_t dot = s.find('.', start);
      const std::string part = s.substr(start, dot == std::string::npos ? dot : dot - start);
      const bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                                       [](char c) { return c >= '0' && c <= '9'; });
      parts_.push_back(digits && part.size() < 18 ? Value::integer(std::stoll(part))
                                                  : Value::string(part));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
  }

  Value operator()(const Value& item) const {
    Value v = item;
    for (const Value& part : parts_) {
      v = get_item(v, part);
      if (!default_.is_undefined() && !default_.is_none() && v.is_undefined()) v = default_;
    }
    return fold_case(v, mode_);
  }

 private:
  std::vector<Value> parts_;
  CaseMode mode_;
  Value default_;
};

// Jinja's map/select/unique/items/batch are generators: their errors surface only when the
// result is consumed. Evaluate eagerly, but defer template errors (not limit errors).
template <typename Fn>
Value lazily(Fn&& fn) {
  try {
    return fn();
  } catch (const TemplateError& e) {
    if (e.kind() == TemplateErrorKind::kLimit) throw;
    return Value::failed_generator(e.message());
  }
}

CaseMode case_mode(const Value& case_sensitive) {
  return case_sensitive.truthy() ? CaseMode::kSensitive : CaseMode::kIgnore;
}

Value make_list(RenderState& state, std::vector<Value> items, SeqKind kind) {
  state.check_list_size(items.size());
  state.charge_bytes(items.size() * sizeof(Value));
  switch (kind) {
    case SeqKind::kGenerator:
      return Value::generator(std::move(items));
    case SeqKind::kTuple:
      return Value::tuple(std::move(items));
    default:
      return Value::list(std::move(items));
  }
}

// Hashable identity of a value for unique(): Python's 1 == 1.0 == True share one key.
std::string hash_key(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kString:
      return fmt::format("s{}", v.as_string());
    case ValueKind::kBool:
    case ValueKind::kInt:
      return fmt::format("n{}", v.as_int());
    case ValueKind::kFloat: {
      const double d = v.as_float();
      if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9e18)
        return fmt::format("n{}", static_cast<int64_t>(d));
      return fmt::format("f{}", format_python_float(d));
    }
    case ValueKind::kNone:
      return "N";
    case ValueKind::kList:
      if (v.is_tuple()) {
        std::string key = "t(";
        for (const Value& item : v.as_list()) key += hash_key(item) + ",";
        return key + ")";
      }
      break;
    default:
      break;
  }
  template_fail("unhashable type: '{}'", v.type_name());
}

Value select_eager(RenderState& state, const Value& seq, CallArgs& args, bool by_attribute,
                   bool keep);

// select/reject/selectattr/rejectattr: keep items whose (attribute's) test result == keep.
Value select_impl(RenderState& state, const Value& seq, CallArgs& args, bool by_attribute,
                  bool keep) {
  return lazily([&]() -> Value { return select_eager(state, seq, args, by_attribute, keep); });
}

Value select_eager(RenderState& state, const Value& seq, CallArgs& args, bool by_attribute,
                   bool keep) {
  if (!seq.truthy()) return Value::generator({});  // Jinja: `if value:` before anything else
  std::vector<Value> rest = args.positional;
  AttrGetter getter(Value::none(), CaseMode::kSensitive);
  if (by_attribute) {
    if (rest.empty()) template_fail("missing parameter for attribute name");
    getter = AttrGetter(rest.front(), CaseMode::kSensitive);
    rest.erase(rest.begin());
  }
  std::string test_name;
  if (!rest.empty()) {
    test_name = string_arg("select", "test", rest.front());
    rest.erase(rest.begin());
  }
  std::vector<Value> out;
  for (const Value& item : iterate(seq)) {
    state.step();
    const Value v = getter(item);
    bool passed = v.truthy();
    if (!test_name.empty()) {
      CallArgs test_args{rest, args.keyword};
      passed = apply_test(state, test_name, v, test_args);
    }
    if (passed == keep) out.push_back(item);
  }
  return make_list(state, std::move(out), SeqKind::kGenerator);
}

// The min/max key: an item's (attribute's) case-folded value.
Value extreme(RenderState& state, const Value& seq, CallArgs& args, bool want_max) {
  const auto a = bind_args(
      want_max ? "max" : "min", args,
      {optional("case_sensitive", Value::boolean(false)), optional("attribute", Value::none())});
  const AttrGetter key(a[1], case_mode(a[0]));
  const std::vector<Value> items = iterate(seq);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    state.step();
    Value k = key(items[i]);
    const int c = compare_values(k, best_key);
    if (want_max ? c > 0 : c < 0) {
      best = i;
      best_key = std::move(k);
    }
  }
  return items[best];
}

}  // namespace

Value filter_first(RenderState&, const Value& v, CallArgs& args) {
  bind_args("first", args, {});
  if (v.is_string() && !v.as_string().empty()) return iterate(v).front();
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value filter_last(RenderState&, const Value& v, CallArgs& args) {
  bind_args("last", args, {});
  if (v.is_generator()) template_fail("'generator' object is not reversible");
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Value filter_length(RenderState&, const Value& v, CallArgs& args) {
  bind_args("length", args, {});
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return Value::integer(0);
    case ValueKind::kString:
      return Value::integer(static_cast<int64_t>(utf8_length(v.as_string())));
    case ValueKind::kDict:
      return Value::integer(static_cast<int64_t>(v.as_dict().size()));
    case ValueKind::kList:
      if (!v.is_generator())  // lists, tuples and dict views
        return Value::integer(static_cast<int64_t>(v.as_list().size()));
      break;
    default:
      break;
  }
  template_fail("object of type '{}' has no len()", v.type_name());
}

Value filter_list(RenderState& state, const Value& v, CallArgs& args) {
  bind_args("list", args, {});
  return make_list(state, iterate(v), SeqKind::kList);
}

Value filter_join(RenderState& state, const Value& v, CallArgs& args) {
  const auto a = bind_args(
      "join", args, {optional("d", Value::string("")), optional("attribute", Value::none())});
  const AttrGetter getter(a[1], CaseMode::kSensitive);
  const std::string separator = to_python_str(a[0]);
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += separator;
    first = false;
    out += to_python_str(getter(item));
    state.check_string_size(out.size());
  }
  state.charge_bytes(out.size());
  return Value::string(std::move(out));
}

Value filter_map(RenderState& state, const Value& v, CallArgs& args) {
  return lazily([&]() -> Value {
    if (!v.truthy()) return Value::generator({});  // Jinja: `if value:` first
    std::vector<Value> out;
    if (args.positional.empty()) {
      const auto a =
          bind_args("map", args, {required("attribute"), optional("default", Value::none())});
      const AttrGetter getter(a[0], CaseMode::kSensitive, a[1]);
      for (const Value& item : iterate(v)) out.push_back(getter(item));
      return make_list(state, std::move(out), SeqKind::kGenerator);
    }
    const std::string filter = string_arg("map", "filter", args.positional.front());
    CallArgs rest{std::vector<Value>(args.positional.begin() + 1, args.positional.end()),
                  args.keyword};
    for (const Value& item : iterate(v)) {
      state.step();
      CallArgs call = rest;
      out.push_back(apply_filter(state, filter, item, call));
    }
    return make_list(state, std::move(out), SeqKind::kGenerator);
  });
}

Value filter_select(RenderState& state, const Value& v, CallArgs& args) {
  return select_impl(state, v, args, false, true);
}
Value filter_reject(RenderState& state, const Value& v, CallArgs& args) {
  return select_impl(state, v, args, false, false);
}
Value filter_selectattr(RenderState& state, const Value& v, CallArgs& args) {
  return select_impl(state, v, args, true, true);
}
Value filter_rejectattr(RenderState& state, const Value& v, CallArgs& args) {
  return select_impl(state, v, args, true, false);
}

Value filter_sort(RenderState& state, const Value& v, CallArgs& args) {
  const auto a = bind_args(
      "sort", args,
      {optional("reverse", Value::boolean(false)),
       optional("case_sensitive", Value::boolean(false)), optional("attribute", Value::none())});
  std::vector<AttrGetter> getters;
  if (a[2].is_string() && a[2].as_string().find(',') != std::string::npos) {
    for (const std::string& part :
         py_split(a[2].as_string(), ",", -1, false, state.limits().max_list_items))
      getters.emplace_back(Value::string(part), case_mode(a[1]));
  } else {
    getters.emplace_back(a[2], case_mode(a[1]));
  }
  std::vector<Value> items = iterate(v);
  std::vector<std::pair<Value, size_t>> keyed;
  keyed.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    std::vector<Value> key;
    for (const auto& g : getters) key.push_back(g(items[i]));
    // Keys are lists, as Jinja's make_multi_attrgetter builds them: equal elements (even
    // Undefined ones) compare equal before `<` is tried.
    keyed.emplace_back(Value::list(std::move(key)), i);
  }
  const bool reverse = a[0].truthy();
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    state.step();
    return reverse ? compare_values(y.first, x.first) < 0 : compare_values(x.first, y.first) < 0;
  });
  std::vector<Value> out;
  out.reserve(items.size());
  for (const auto& k : keyed) out.push_back(items[k.second]);
  return make_list(state, std::move(out), SeqKind::kList);
}

Value filter_unique(RenderState& state, const Value& v, CallArgs& args) {
  return lazily([&]() -> Value {
    const auto a = bind_args(
        "unique", args,
        {optional("case_sensitive", Value::boolean(false)), optional("attribute", Value::none())});
    const AttrGetter getter(a[1], case_mode(a[0]));
    std::unordered_set<std::string> seen;
    std::vector<Value> out;
    for (const Value& item : iterate(v))
      if (seen.insert(hash_key(getter(item))).second) out.push_back(item);
    return make_list(state, std::move(out), SeqKind::kGenerator);
  });
}

Value filter_dictsort(RenderState& state, const Value& v, CallArgs& args) {
  const auto a =
      bind_args("dictsort", args,
                {optional("case_sensitive", Value::boolean(false)),
                 optional("by", Value::string("key")), optional("reverse", Value::boolean(false))});
  if (!v.is_dict()) template_fail("dictsort(): expected a mapping, got '{}'", v.type_name());
  const std::string& by = string_arg("dictsort", "by", a[1]);
  if (by != "key" && by != "value") template_fail("You can only sort by either 'key' or 'value'");
  const CaseMode mode = case_mode(a[0]);
  std::vector<std::pair<Value, Value>> entries = v.as_dict().entries();
  const bool reverse = a[2].truthy();
  std::stable_sort(entries.begin(), entries.end(), [&](const auto& x, const auto& y) {
    state.step();
    const Value kx = fold_case(by == "key" ? x.first : x.second, mode);
    const Value ky = fold_case(by == "key" ? y.first : y.second, mode);
    return reverse ? compare_values(ky, kx) < 0 : compare_values(kx, ky) < 0;
  });
  std::vector<Value> out;
  for (auto& [k, val] : entries) out.push_back(Value::tuple({k, val}));
  return make_list(state, std::move(out), SeqKind::kList);
}

Value filter_items(RenderState& state, const Value& v, CallArgs& args) {
  return lazily([&]() -> Value {
    bind_args("items", args, {});
    if (v.is_undefined()) return Value::generator({});
    if (!v.is_dict()) template_fail("Can only get item pairs from a mapping.");
    std::vector<Value> out;
    for (const auto& [k, val] : v.as_dict().entries()) out.push_back(Value::tuple({k, val}));
    return make_list(state, std::move(out), SeqKind::kGenerator);
  });
}

Value filter_reverse(RenderState& state, const Value& v, CallArgs& args) {
  bind_args("reverse", args, {});
  if (v.is_string()) {
    std::u32string cps = decode_utf8(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value::string(encode_utf8(cps));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  // reversed() of a list or dict is an iterator; a generator is materialized into a list.
  return make_list(state, std::move(items),
                   v.is_generator() ? SeqKind::kList : SeqKind::kGenerator);
}

Value filter_batch(RenderState& state, const Value& v, CallArgs& args) {
  return lazily([&]() -> Value {
    const auto a =
        bind_args("batch", args, {required("linecount"), optional("fill_with", Value::none())});
    const int64_t linecount = int_arg("batch", "linecount", a[0]);
    std::vector<Value> batches;
    std::vector<Value> current;
    for (const Value& item : iterate(v)) {
      if (static_cast<int64_t>(current.size()) == linecount) {
        batches.push_back(Value::list(std::move(current)));
        current.clear();
      }
      current.push_back(item);
    }
    if (!current.empty()) {
      if (!a[1].is_none() && static_cast<int64_t>(current.size()) < linecount) {
        state.check_list_size(static_cast<size_t>(linecount));
        current.resize(static_cast<size_t>(linecount), a[1]);
      }
      batches.push_back(Value::list(std::move(current)));
    }
    return make_list(state, std::move(batches), SeqKind::kGenerator);
  });
}

Value filter_min(RenderState& state, const Value& v, CallArgs& args) {
  return extreme(state, v, args, false);
}
Value filter_max(RenderState& state, const Value& v, CallArgs& args) {
  return extreme(state, v, args, true);
}

Value filter_sum(RenderState& state, const Value& v, CallArgs& args) {
  const auto a = bind_args(
      "sum", args, {optional("attribute", Value::none()), optional("start", Value::integer(0))});
  const AttrGetter getter(a[0], CaseMode::kSensitive);
  Value total = a[1];
  for (const Value& item : iterate(v))
    total = binary_op(state, BinaryOp::kAdd, total, getter(item));
  return total;
}

}  // namespace tandem::chat
