// Python/Jinja2 operator semantics over Values.
#include "chat/operators.h"

#include <cmath>

#include "chat/methods.h"
#include "chat/percent_format.h"
#include "chat/template_error.h"
#include "chat/utf8.h"

namespace tandem::chat {
namespace {

std::string object_type_repr(const Value& obj) {
  if (obj.is_none()) return "None";
  return obj.type_name() + " object";
}

Value missing_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(fmt::format("'{}' has no attribute '{}'", object_type_repr(obj), name));
}

Value missing_item(const Value& obj, const Value& key) {
  if (key.is_string()) return missing_attribute(obj, key.as_string());
  return Value::undefined(
      fmt::format("{} has no element {}", object_type_repr(obj), python_repr(key)));
}

Value unsafe_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(
      fmt::format("access to attribute '{}' of '{}' object is unsafe.", name, obj.type_name()));
}

[[noreturn]] void fail_operands(const char* op, const Value& a, const Value& b) {
  template_fail("unsupported operand type(s) for {}: '{}' and '{}'", op, a.type_name(),
                b.type_name());
}

void check_operands(const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
}

[[noreturn]] void fail_overflow() {
  template_fail("integer overflow (values beyond 64 bits are not supported)");
}

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) fail_overflow();
  return r;
}

int64_t checked_sub(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) fail_overflow();
  return r;
}

int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) fail_overflow();
  return r;
}

Value add(RenderState& state, const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value::floating(a.as_float() + b.as_float());
    return Value::integer(checked_add(a.as_int(), b.as_int()));
  }
  if (a.is_string() && b.is_string()) {
    const size_t n = a.as_string().size() + b.as_string().size();
    state.check_string_size(n);
    state.charge_bytes(n);
    return Value::string(a.as_string() + b.as_string());
  }
  if (a.is_list_or_tuple() && b.is_list_or_tuple() && a.seq_kind() == b.seq_kind()) {
    const size_t n = a.as_list().size() + b.as_list().size();
    state.check_list_size(n);
    state.charge_bytes(n * sizeof(Value));
    std::vector<Value> items = a.as_list();
    items.insert(items.end(), b.as_list().begin(), b.as_list().end());
    return a.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }
  if (a.is_string()) template_fail("can only concatenate str (not \"{}\") to str", b.type_name());
  if (a.is_plain_list())
    template_fail("can only concatenate list (not \"{}\") to list", b.type_name());
  fail_operands("+", a, b);
}

Value repeat(RenderState& state, const Value& seq, int64_t times) {
  if (times < 0) times = 0;
  const auto n = static_cast<uint64_t>(times);
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && n > state.limits().max_output_bytes / s.size())
      state.check_string_size(state.limits().max_output_bytes + 1);
    state.check_string_size(s.size() * n);
    state.charge_bytes(s.size() * n);
    std::string out;
    out.reserve(s.size() * n);
    for (uint64_t i = 0; i < n; ++i) out += s;
    return Value::string(std::move(out));
  }
  const auto& items = seq.as_list();
  if (!items.empty() && n > state.limits().max_list_items / items.size())
    state.check_list_size(state.limits().max_list_items + 1);
  state.check_list_size(items.size() * n);
  state.charge_bytes(items.size() * n * sizeof(Value));
  std::vector<Value> out;
  out.reserve(items.size() * n);
  for (uint64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Value multiply(RenderState& state, const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value::floating(a.as_float() * b.as_float());
    return Value::integer(checked_mul(a.as_int(), b.as_int()));
  }
  const bool a_seq = a.is_string() || a.is_list_or_tuple();
  const bool b_seq = b.is_string() || b.is_list_or_tuple();
  if (a_seq && (b.is_int() || b.is_bool())) return repeat(state, a, b.as_int());
  if (b_seq && (a.is_int() || a.is_bool())) return repeat(state, b, a.as_int());
  fail_operands("*", a, b);
}

void check_divisor(const Value& a, const Value& b, BinaryOp op) {
  if (b.as_float() != 0.0) return;
  if (op == BinaryOp::kDiv) template_fail("division by zero");
  if (a.is_float() || b.is_float()) template_fail("float division by zero");
  template_fail("integer division or modulo by zero");
}

// CPython's float divmod: returns (floor quotient, modulo with the divisor's sign).
std::pair<double, double> float_divmod(double x, double y) {
  double mod = std::fmod(x, y);
  double div = (x - mod) / y;
  if (mod != 0.0) {
    if ((y < 0) != (mod < 0)) {
      mod += y;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, y);
  }
  double floordiv = 0.0;
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, x / y);
  }
  return {floordiv, mod};
}

Value floor_divide(const Value& a, const Value& b) {
  if (!a.is_number() || !b.is_number()) fail_operands("//", a, b);
  check_divisor(a, b, BinaryOp::kFloorDiv);
  if (a.is_float() || b.is_float())
    return Value::floating(float_divmod(a.as_float(), b.as_float()).first);
  const int64_t x = a.as_int();
  const int64_t y = b.as_int();
  if (x == INT64_MIN && y == -1) fail_overflow();
  int64_t q = x / y;
  if (x % y != 0 && ((x < 0) != (y < 0))) --q;
  return Value::integer(q);
}

Value modulo(RenderState& state, const Value& a, const Value& b) {
  if (a.is_string()) return Value::string(percent_format(state, a.as_string(), b));
  if (!a.is_number() || !b.is_number()) fail_operands("%", a, b);
  check_divisor(a, b, BinaryOp::kMod);
  if (a.is_float() || b.is_float())
    return Value::floating(float_divmod(a.as_float(), b.as_float()).second);
  const int64_t x = a.as_int();
  const int64_t y = b.as_int();
  if (y == -1) return Value::integer(0);
  int64_t r = x % y;
  if (r != 0 && ((r < 0) != (y < 0))) r += y;
  return Value::integer(r);
}

Value power(const Value& a, const Value& b) {
  if (!a.is_number() || !b.is_number()) fail_operands("** or pow()", a, b);
  if (!a.is_float() && !b.is_float() && b.as_int() >= 0) {
    int64_t base = a.as_int();
    int64_t exp = b.as_int();
    int64_t result = 1;
    while (exp > 0) {
      if (exp & 1) result = checked_mul(result, base);
      exp >>= 1;
      if (exp > 0) base = checked_mul(base, base);
    }
    return Value::integer(result);
  }
  const double x = a.as_float();
  const double y = b.as_float();
  if (x == 0.0 && y < 0) template_fail("0.0 cannot be raised to a negative power");
  if (x < 0 && std::floor(y) != y) template_fail("complex results are not supported");
  const double r = std::pow(x, y);
  if (std::isinf(r) && std::isfinite(x) && std::isfinite(y))
    template_fail("numerical result out of range");
  return Value::floating(r);
}

// Python slice index normalization (PySlice_AdjustIndices).
int64_t slice_bound(const Value& v, int64_t length, int64_t step, bool is_start) {
  const int64_t lower = step < 0 ? -1 : 0;
  const int64_t upper = step < 0 ? length - 1 : length;
  if (v.is_none()) return (step < 0) == is_start ? upper : lower;
  int64_t i = v.as_int();
  if (i < 0) i = i < -length ? lower : i + length;
  if (i < lower) i = lower;
  if (i > upper) i = upper;
  return i;
}

std::vector<size_t> slice_positions(int64_t length, const Value& start, const Value& stop,
                                    const Value& step_value) {
  int64_t step = 1;
  if (!step_value.is_none()) {
    step = step_value.as_int();
    if (step == 0) template_fail("slice step cannot be zero");
  }
  const int64_t begin = slice_bound(start, length, step, true);
  const int64_t end = slice_bound(stop, length, step, false);
  std::vector<size_t> positions;
  if (step > 0) {
    for (int64_t i = begin; i < end; i += step) positions.push_back(static_cast<size_t>(i));
  } else {
    for (int64_t i = begin; i > end; i += step) positions.push_back(static_cast<size_t>(i));
  }
  return positions;
}

Value string_index(const std::string& s, int64_t index) {
  const std::vector<size_t> offsets = code_point_offsets(s);
  const auto n = static_cast<int64_t>(offsets.size()) - 1;
  if (index < 0) index += n;
  if (index < 0 || index >= n) return Value::undefined();
  const auto i = static_cast<size_t>(index);
  return Value::string(s.substr(offsets[i], offsets[i + 1] - offsets[i]));
}

// `~`: str(a) + str(b), without copying operands that already are strings.
Value concat(RenderState& state, const Value& a, const Value& b) {
  std::string left_str;
  std::string right_str;
  if (!a.is_string()) left_str = to_python_str(a);
  if (!b.is_string()) right_str = to_python_str(b);
  const std::string& left = a.is_string() ? a.as_string() : left_str;
  const std::string& right = b.is_string() ? b.as_string() : right_str;
  state.check_string_size(left.size() + right.size());
  state.charge_bytes(left.size() + right.size());
  std::string out;
  out.reserve(left.size() + right.size());
  out += left;
  out += right;
  return Value::string(std::move(out));
}

}  // namespace

void fail_undefined(const Value& undefined) {
  const std::string& hint = undefined.undefined_hint();
  throw TemplateError(hint.empty() ? "value is undefined" : hint);
}

Value binary_op(RenderState& state, BinaryOp op, const Value& a, const Value& b) {
  if (op == BinaryOp::kConcat) return concat(state, a, b);
  // str % x formats whatever x is (an Undefined right operand included).
  if (op == BinaryOp::kMod && a.is_string())
    return Value::string(percent_format(state, a.as_string(), b));
  check_operands(a, b);
  switch (op) {
    case BinaryOp::kAdd:
      return add(state, a, b);
    case BinaryOp::kSub:
      if (!a.is_number() || !b.is_number()) fail_operands("-", a, b);
      if (a.is_float() || b.is_float()) return Value::floating(a.as_float() - b.as_float());
      return Value::integer(checked_sub(a.as_int(), b.as_int()));
    case BinaryOp::kMul:
      return multiply(state, a, b);
    case BinaryOp::kDiv:
      if (!a.is_number() || !b.is_number()) fail_operands("/", a, b);
      check_divisor(a, b, BinaryOp::kDiv);
      return Value::floating(a.as_float() / b.as_float());
    case BinaryOp::kFloorDiv:
      return floor_divide(a, b);
    case BinaryOp::kMod:
      return modulo(state, a, b);
    case BinaryOp::kPow:
      return power(a, b);
    default:
      template_fail("unknown operator");
  }
}

bool compare_op(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::kEq:
      return values_equal(a, b);
    case CompareOp::kNe:
      return !values_equal(a, b);
    case CompareOp::kIn:
      return contains(b, a);
    case CompareOp::kNotIn:
      return !contains(b, a);
    default:
      break;
  }
  check_operands(a, b);
  const int c = compare_values(a, b);
  switch (op) {
    case CompareOp::kLt:
      return c < 0;
    case CompareOp::kLe:
      return c <= 0;
    case CompareOp::kGt:
      return c > 0;
    default:
      return c >= 0;
  }
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case ValueKind::kUndefined:
      return false;
    case ValueKind::kString:
      if (!item.is_string())
        template_fail("'in <string>' requires string as left operand, not {}", item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case ValueKind::kList:
      if (container.seq_kind() == SeqKind::kKeysView || container.seq_kind() == SeqKind::kItemsView)
        check_hashable(item);  // set-like views hash their operand
      for (const Value& v : iterate(container))
        if (values_equal(v, item)) return true;
      return false;
    case ValueKind::kDict:
      check_hashable(item);
      return container.as_dict().find(item) != nullptr;
    default:
      template_fail("argument of type '{}' is not iterable", container.type_name());
  }
}

Value negate(const Value& v) {
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_float()) return Value::floating(-v.as_float());
  if (!v.is_number()) template_fail("bad operand type for unary -: '{}'", v.type_name());
  if (v.as_int() == INT64_MIN) fail_overflow();
  return Value::integer(-v.as_int());
}

Value unary_plus(const Value& v) {
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_number()) template_fail("bad operand type for unary +: '{}'", v.type_name());
  return v.is_bool() ? Value::integer(v.as_int()) : v;
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (name.size() >= 2 && name[0] == '_' && name[1] == '_') return unsafe_attribute(obj, name);
  switch (find_method(obj, name)) {
    case MethodKind::kSafe:
      return bind_method(obj, name);
    case MethodKind::kUnsafe:
      return unsafe_attribute(obj, name);
    case MethodKind::kNone:
      break;
  }
  if (obj.is_dict()) {
    const Value* v = obj.as_dict().find(std::string_view(name));
    return v != nullptr ? *v : missing_attribute(obj, name);
  }
  if (obj.is_namespace()) {
    const Value* v = obj.as_namespace().attrs.find(std::string_view(name));
    return v != nullptr ? *v : missing_attribute(obj, name);
  }
  return missing_attribute(obj, name);
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_dict()) {
    if (const Value* v = obj.as_dict().find(key)) return *v;
  } else if (obj.is_list_or_tuple() && (key.is_int() || key.is_bool())) {
    const auto& items = obj.as_list();
    int64_t i = key.as_int();
    if (i < 0) i += static_cast<int64_t>(items.size());
    if (i >= 0 && i < static_cast<int64_t>(items.size())) return items[static_cast<size_t>(i)];
    return missing_item(obj, key);
  } else if (obj.is_string() && (key.is_int() || key.is_bool())) {
    return string_index(obj.as_string(), key.as_int());
  }
  if (key.is_string()) return get_attr(obj, key.as_string());
  return missing_item(obj, key);
}

Value slice_value(RenderState& state, const Value& obj, const Value& start, const Value& stop,
                  const Value& step) {
  if (obj.is_undefined()) fail_undefined(obj);
  // Jinja compiles slices to plain Python subscripts (no sandbox getitem): errors propagate.
  for (const Value* part : {&start, &stop, &step}) {
    if (part->is_undefined()) fail_undefined(*part);
    if (!part->is_none() && !part->is_int() && !part->is_bool())
      template_fail("slice indices must be integers or None or have an __index__ method");
  }
  if (obj.is_string()) {
    const std::string& s = obj.as_string();
    const std::vector<size_t> offsets = code_point_offsets(s);
    const auto length = static_cast<int64_t>(offsets.size()) - 1;
    std::string out;
    for (size_t i : slice_positions(length, start, stop, step))
      out.append(s, offsets[i], offsets[i + 1] - offsets[i]);
    state.charge_bytes(out.size());
    return Value::string(std::move(out));
  }
  if (obj.is_list_or_tuple()) {
    const auto& items = obj.as_list();
    std::vector<Value> out;
    for (size_t i : slice_positions(static_cast<int64_t>(items.size()), start, stop, step))
      out.push_back(items[i]);
    state.charge_bytes(out.size() * sizeof(Value));
    return obj.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  if (obj.is_dict()) template_fail("unhashable type: 'slice'");
  template_fail("'{}' object is not subscriptable", obj.type_name());
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return {};
    case ValueKind::kList:
      if (v.is_generator() && !v.deferred_error().empty()) throw TemplateError(v.deferred_error());
      return v.as_list();
    case ValueKind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.as_dict().size());
      for (const auto& entry : v.as_dict().entries()) keys.push_back(entry.first);
      return keys;
    }
    case ValueKind::kString: {
      std::vector<Value> chars;
      const std::string& s = v.as_string();
      size_t pos = 0;
      while (pos < s.size()) {
        const size_t start = pos;
        next_code_point(s, pos);
        chars.push_back(Value::string(s.substr(start, pos - start)));
      }
      return chars;
    }
    default:
      template_fail("'{}' object is not iterable", v.type_name());
  }
}

}  // namespace tandem::chat
