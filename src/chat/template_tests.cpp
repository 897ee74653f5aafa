// Jinja2's builtin tests.
#include "chat/template_tests.h"

#include <unordered_map>

#include "chat/arguments.h"
#include "chat/operators.h"
#include "chat/template_error.h"
#include "chat/utf8.h"

namespace tandem::chat {
namespace {

// A test that takes no argument besides its input.
template <bool (*Pred)(const Value&)>
bool unary_test(RenderState&, const Value& v, CallArgs& args) {
  bind_args("test", args, {});
  return Pred(v);
}

bool is_defined(const Value& v) { return !v.is_undefined(); }
bool is_undefined(const Value& v) { return v.is_undefined(); }
bool is_none(const Value& v) { return v.is_none(); }
bool is_boolean(const Value& v) { return v.is_bool(); }
bool is_false(const Value& v) { return v.is_bool() && !v.as_bool(); }
bool is_true(const Value& v) { return v.is_bool() && v.as_bool(); }
bool is_integer(const Value& v) { return v.is_int(); }
bool is_float(const Value& v) { return v.is_float(); }
bool is_number(const Value& v) { return v.is_number(); }
bool is_string(const Value& v) { return v.is_string(); }
bool is_mapping(const Value& v) { return v.is_dict(); }
// Python: has len() and __getitem__ (Jinja's Undefined has both).
bool is_sequence(const Value& v) {
  return v.is_undefined() || v.is_string() || v.is_dict() || v.is_list_or_tuple();
}
bool is_iterable(const Value& v) {
  return v.is_undefined() || v.is_string() || v.is_dict() || v.is_list();
}
// Undefined defines __call__ (which raises), so Python's callable() says yes.
bool is_callable(const Value& v) { return v.is_callable() || v.is_undefined(); }
bool is_escaped(const Value&) { return false; }  // no Markup values: nothing has __html__

bool has_case(const Value& v, bool upper) {
  const std::string s = to_python_str(v);
  bool any = false;
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t cp = next_code_point(s, pos);
    if (upper ? is_lower(cp) : is_upper(cp)) return false;
    any |= upper ? is_upper(cp) : is_lower(cp);
  }
  return any;
}
bool is_lower_test(const Value& v) { return has_case(v, false); }
bool is_upper_test(const Value& v) { return has_case(v, true); }

bool modulo_equals(RenderState& state, const Value& v, const Value& divisor, int64_t expected) {
  return values_equal(binary_op(state, BinaryOp::kMod, v, divisor), Value::integer(expected));
}

bool test_odd(RenderState& state, const Value& v, CallArgs& args) {
  bind_args("odd", args, {});
  return modulo_equals(state, v, Value::integer(2), 1);
}

bool test_even(RenderState& state, const Value& v, CallArgs& args) {
  bind_args("even", args, {});
  return modulo_equals(state, v, Value::integer(2), 0);
}

bool test_divisibleby(RenderState& state, const Value& v, CallArgs& args) {
  const auto a = bind_args("divisibleby", args, {required("num")});
  return modulo_equals(state, v, a[0], 0);
}

template <CompareOp Op>
bool compare_test(RenderState&, const Value& v, CallArgs& args) {
  const auto a = bind_args("compare", args, {required("other")});
  return compare_op(Op, v, a[0]);
}

bool test_in(RenderState&, const Value& v, CallArgs& args) {
  const auto a = bind_args("in", args, {required("seq")});
  return contains(a[0], v);
}

// Python `is`: singletons and small ints compare by value, everything else by identity.
bool test_sameas(RenderState&, const Value& v, CallArgs& args) {
  const auto a = bind_args("sameas", args, {required("other")});
  const Value& o = a[0];
  if (v.kind() != o.kind()) return false;
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return false;
    case ValueKind::kNone:
      return true;
    case ValueKind::kBool:
      return v.as_bool() == o.as_bool();
    case ValueKind::kInt:
      return v.as_int() == o.as_int() && v.as_int() >= -5 && v.as_int() <= 256;
    case ValueKind::kString:
      return &v.as_string() == &o.as_string();
    case ValueKind::kList:
      return &v.as_list() == &o.as_list();
    case ValueKind::kDict:
      return &v.as_dict() == &o.as_dict();
    case ValueKind::kNamespace:
      return &v.as_namespace() == &o.as_namespace();
    case ValueKind::kCallable:
      return &v.as_callable() == &o.as_callable();
    default:
      return false;
  }
}

bool test_filter(RenderState&, const Value& v, CallArgs& args) {
  bind_args("filter", args, {});
  return v.is_string() && is_known_filter(v.as_string());
}

bool test_test(RenderState&, const Value& v, CallArgs& args) {
  bind_args("test", args, {});
  return v.is_string() && is_known_test(v.as_string());
}

const std::unordered_map<std::string_view, TestFn>& test_registry() {
  static const std::unordered_map<std::string_view, TestFn> table = {
      {"boolean", unary_test<is_boolean>},
      {"callable", unary_test<is_callable>},
      {"defined", unary_test<is_defined>},
      {"divisibleby", test_divisibleby},
      {"eq", compare_test<CompareOp::kEq>},
      {"equalto", compare_test<CompareOp::kEq>},
      {"==", compare_test<CompareOp::kEq>},
      {"escaped", unary_test<is_escaped>},
      {"even", test_even},
      {"false", unary_test<is_false>},
      {"filter", test_filter},
      {"float", unary_test<is_float>},
      {"ge", compare_test<CompareOp::kGe>},
      {">=", compare_test<CompareOp::kGe>},
      {"gt", compare_test<CompareOp::kGt>},
      {"greaterthan", compare_test<CompareOp::kGt>},
      {">", compare_test<CompareOp::kGt>},
      {"in", test_in},
      {"integer", unary_test<is_integer>},
      {"iterable", unary_test<is_iterable>},
      {"le", compare_test<CompareOp::kLe>},
      {"<=", compare_test<CompareOp::kLe>},
      {"lower", unary_test<is_lower_test>},
      {"lt", compare_test<CompareOp::kLt>},
      {"lessthan", compare_test<CompareOp::kLt>},
      {"<", compare_test<CompareOp::kLt>},
      {"mapping", unary_test<is_mapping>},
      {"ne", compare_test<CompareOp::kNe>},
      {"!=", compare_test<CompareOp::kNe>},
      {"none", unary_test<is_none>},
      {"number", unary_test<is_number>},
      {"odd", test_odd},
      {"sameas", test_sameas},
      {"sequence", unary_test<is_sequence>},
      {"string", unary_test<is_string>},
      {"test", test_test},
      {"true", unary_test<is_true>},
      {"undefined", unary_test<is_undefined>},
      {"upper", unary_test<is_upper_test>},
  };
  return table;
}

}  // namespace

TestFn find_test(std::string_view name) {
  const auto it = test_registry().find(name);
  return it == test_registry().end() ? nullptr : it->second;
}

bool apply_test(RenderState& state, std::string_view name, const Value& input, CallArgs& args) {
  const TestFn fn = find_test(name);
  if (fn == nullptr) template_fail("No test named '{}'.", name);
  return fn(state, input, args);
}

}  // namespace tandem::chat
