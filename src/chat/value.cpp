// Value construction, Python equality/ordering, and Python str()/repr() of values.
#include "chat/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "chat/template_error.h"
#include "chat/utf8.h"

namespace tandem::chat {
namespace {

constexpr size_t kDictIndexThreshold = 16;  // dicts larger than this index their string keys

int child_depth(const Value& v) { return v.depth(); }

void check_depth(int depth) {
  if (depth > kMaxValueDepth) limit_fail("value nested deeper than {} levels", kMaxValueDepth);
}

Value from_json_at(const nlohmann::ordered_json& json, int depth) {
  check_depth(depth);
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::boolean(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::integer(json.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const auto u = json.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value::integer(static_cast<int64_t>(u));
      return Value::floating(static_cast<double>(u));  // beyond int64: kept approximately
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value::floating(json.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::string(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json_at(item, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      d.reserve(json.size());
      for (const auto& [key, item] : json.items())
        d.insert_new(Value::string(key), from_json_at(item, depth + 1));
      return Value::dict(std::move(d));
    }
    default:
      template_fail("unsupported JSON value of type {}", json.type_name());
  }
}

bool is_printable(char32_t cp) {
  if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0xA0) || cp == 0xAD) return false;
  if ((cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F)) return false;
  if ((cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 || cp == 0xFEFF || cp == 0x1680) return false;
  return true;
}

void append_escaped_code_point(std::string& out, char32_t cp) {
  if (cp <= 0xFF)
    out += fmt::format("\\x{:02x}", static_cast<unsigned>(cp));
  else if (cp <= 0xFFFF)
    out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
  else
    out += fmt::format("\\U{:08x}", static_cast<unsigned>(cp));
}

std::string repr_string(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  out.reserve(s.size() + 2);
  size_t pos = 0;
  while (pos < s.size()) {
    // Runs of printable ASCII other than the quote and backslash are copied as they are.
    size_t run = pos;
    while (run < s.size() && s[run] >= 0x20 && s[run] < 0x7F && s[run] != quote && s[run] != '\\')
      ++run;
    out.append(s, pos, run - pos);
    pos = run;
    if (pos >= s.size()) break;
    const char32_t cp = next_code_point(s, pos);
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (!is_printable(cp)) {
      append_escaped_code_point(out, cp);
    } else {
      append_utf8(out, cp);
    }
  }
  out.push_back(quote);
  return out;
}

void repr_into(std::string& out, const Value& v, int depth);

void repr_sequence(std::string& out, const Value& v, int depth) {
  if (v.is_generator()) {
    out += "<generator object>";
    return;
  }
  if (!v.is_list_or_tuple()) {  // dict_keys([...]) and friends
    out += v.type_name();
    out += "([";
    const auto& items = v.as_list();
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out += ", ";
      repr_into(out, items[i], depth + 1);
    }
    out += "])";
    return;
  }
  const bool tuple = v.is_tuple();
  out.push_back(tuple ? '(' : '[');
  const auto& items = v.as_list();
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    repr_into(out, items[i], depth + 1);
  }
  if (tuple && items.size() == 1) out.push_back(',');
  out.push_back(tuple ? ')' : ']');
}

void repr_dict(std::string& out, const Dict& d, int depth) {
  out.push_back('{');
  bool first = true;
  for (const auto& [key, item] : d.entries()) {
    if (!first) out += ", ";
    first = false;
    repr_into(out, key, depth + 1);
    out += ": ";
    repr_into(out, item, depth + 1);
  }
  out.push_back('}');
}

void repr_into(std::string& out, const Value& v, int depth) {
  check_depth(depth);
  if (out.size() > kMaxReprBytes) limit_fail("repr of a value exceeds {} bytes", kMaxReprBytes);
  switch (v.kind()) {
    case ValueKind::kString:
      out += repr_string(v.as_string());
      return;
    case ValueKind::kList:
      repr_sequence(out, v, depth);
      return;
    case ValueKind::kDict:
      repr_dict(out, v.as_dict(), depth);
      return;
    case ValueKind::kNamespace:
      out += "<Namespace ";
      repr_dict(out, v.as_namespace().attrs, depth);
      out += ">";
      return;
    case ValueKind::kUndefined:
      out += "Undefined";
      return;
    default:
      out += to_python_str(v);
  }
}

bool sequences_equal(const std::vector<Value>& a, const std::vector<Value>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!values_equal(a[i], b[i])) return false;
  return true;
}

bool dicts_equal(const Dict& a, const Dict& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [key, item] : a.entries()) {
    const Value* other = b.find(key);
    if (other == nullptr || !values_equal(item, *other)) return false;
  }
  return true;
}

template <typename T>
int three_way(const T& x, const T& y) {
  return x < y ? -1 : (y < x ? 1 : 0);
}

[[noreturn]] void fail_unorderable(const Value& a, const Value& b) {
  template_fail("'<' not supported between instances of '{}' and '{}'", a.type_name(),
                b.type_name());
}

}  // namespace

const Value* Dict::find(std::string_view key) const {
  if (!string_index_.empty()) {
    const auto it = string_index_.find(std::string(key));
    return it == string_index_.end() ? nullptr : &entries_[it->second].second;
  }
  for (const auto& [k, v] : entries_)
    if (k.is_string() && k.as_string() == key) return &v;
  return nullptr;
}

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  for (const auto& [k, v] : entries_)
    if (values_equal(k, key)) return &v;
  return nullptr;
}

void Dict::set(Value key, Value value) {
  if (const Value* existing = find(key)) {
    depth_ = std::max(depth_, 1 + child_depth(value));
    check_depth(depth_);
    *const_cast<Value*>(existing) = std::move(value);
    return;
  }
  insert_new(std::move(key), std::move(value));
}

void Dict::insert_new(Value key, Value value) {
  depth_ = std::max({depth_, 1 + child_depth(key), 1 + child_depth(value)});
  check_depth(depth_);
  entries_.emplace_back(std::move(key), std::move(value));
  if (!string_index_.empty()) {
    if (entries_.back().first.is_string())
      string_index_.emplace(entries_.back().first.as_string(), entries_.size() - 1);
  } else if (entries_.size() > kDictIndexThreshold) {
    for (size_t i = 0; i < entries_.size(); ++i)
      if (entries_[i].first.is_string()) string_index_.emplace(entries_[i].first.as_string(), i);
  }
}

void Dict::reserve(size_t n) { entries_.reserve(n); }

size_t Dict::size() const { return entries_.size(); }

void Dict::clear() {
  entries_.clear();
  string_index_.clear();
  depth_ = 1;
}

Value Value::undefined(std::string hint) {
  Value v;
  if (!hint.empty()) v.data_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = ValueKind::kNone;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = ValueKind::kBool;
  v.data_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = ValueKind::kInt;
  v.data_ = i;
  return v;
}

Value Value::floating(double d) {
  Value v;
  v.kind_ = ValueKind::kFloat;
  v.data_ = d;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = ValueKind::kString;
  v.data_ = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::list(std::vector<Value> items) {
  auto data = std::make_shared<ListData>();
  for (const Value& item : items) data->depth = std::max(data->depth, 1 + child_depth(item));
  check_depth(data->depth);
  data->items = std::move(items);
  Value v;
  v.kind_ = ValueKind::kList;
  v.data_ = std::shared_ptr<const ListData>(std::move(data));
  return v;
}

Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  const_cast<ListData&>(*std::get<std::shared_ptr<const ListData>>(v.data_)).seq = SeqKind::kTuple;
  return v;
}

Value Value::generator(std::vector<Value> items) {
  return sequence(std::move(items), SeqKind::kGenerator);
}

Value Value::sequence(std::vector<Value> items, SeqKind kind) {
  Value v = list(std::move(items));
  const_cast<ListData&>(*std::get<std::shared_ptr<const ListData>>(v.data_)).seq = kind;
  return v;
}

Value Value::failed_generator(std::string error) {
  Value v = generator({});
  const_cast<ListData&>(*std::get<std::shared_ptr<const ListData>>(v.data_)).deferred_error =
      std::move(error);
  return v;
}

Value Value::dict(Dict d) {
  Value v;
  v.kind_ = ValueKind::kDict;
  v.data_ = std::make_shared<const Dict>(std::move(d));
  return v;
}

Value Value::make_namespace(std::shared_ptr<Namespace> ns) {
  Value v;
  v.kind_ = ValueKind::kNamespace;
  v.data_ = std::move(ns);
  return v;
}

Value Value::callable(std::string name, std::function<Value(RenderState&, CallArgs&)> fn,
                      CallableKind kind) {
  Value v;
  v.kind_ = ValueKind::kCallable;
  v.data_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn), kind});
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& json) { return from_json_at(json, 1); }

int64_t Value::as_int() const {
  if (kind_ == ValueKind::kBool) return std::get<bool>(data_) ? 1 : 0;
  return std::get<int64_t>(data_);
}

double Value::as_float() const {
  if (kind_ == ValueKind::kFloat) return std::get<double>(data_);
  return static_cast<double>(as_int());
}

const std::string& Value::as_string() const {
  return *std::get<std::shared_ptr<const std::string>>(data_);
}

const Dict& Value::as_dict() const { return *std::get<std::shared_ptr<const Dict>>(data_); }

Namespace& Value::as_namespace() const { return *std::get<std::shared_ptr<Namespace>>(data_); }

const Callable& Value::as_callable() const {
  return *std::get<std::shared_ptr<const Callable>>(data_);
}

const ListData& Value::list_items_data() const {
  return *std::get<std::shared_ptr<const ListData>>(data_);
}

const std::string& Value::undefined_hint() const {
  static const std::string kEmpty;
  const auto* p = std::get_if<std::shared_ptr<const std::string>>(&data_);
  return p != nullptr && *p ? **p : kEmpty;
}

int Value::depth() const {
  if (kind_ == ValueKind::kList) return list_items_data().depth;
  if (kind_ == ValueKind::kDict) return as_dict().depth();
  return 0;
}

bool Value::truthy() const {
  switch (kind_) {
    case ValueKind::kUndefined:
    case ValueKind::kNone:
      return false;
    case ValueKind::kBool:
      return as_bool();
    case ValueKind::kInt:
      return as_int() != 0;
    case ValueKind::kFloat:
      return as_float() != 0.0;
    case ValueKind::kString:
      return !as_string().empty();
    case ValueKind::kList:
      return is_generator() || !as_list().empty();
    case ValueKind::kDict:
      return as_dict().size() > 0;
    default:
      return true;
  }
}

std::string Value::type_name() const {
  switch (kind_) {
    case ValueKind::kUndefined:
      return "Undefined";
    case ValueKind::kNone:
      return "NoneType";
    case ValueKind::kBool:
      return "bool";
    case ValueKind::kInt:
      return "int";
    case ValueKind::kFloat:
      return "float";
    case ValueKind::kString:
      return "str";
    case ValueKind::kList:
      switch (seq_kind()) {
        case SeqKind::kList:
          return "list";
        case SeqKind::kTuple:
          return "tuple";
        case SeqKind::kGenerator:
          return "generator";
        case SeqKind::kKeysView:
          return "dict_keys";
        case SeqKind::kValuesView:
          return "dict_values";
        case SeqKind::kItemsView:
          return "dict_items";
      }
      return "list";
    case ValueKind::kDict:
      return "dict";
    case ValueKind::kNamespace:
      return "Namespace";
    case ValueKind::kCallable:
      return "function";
  }
  return "object";
}

bool is_hashable(const Value& v) {
  if (v.is_dict()) return false;
  if (!v.is_list()) return true;
  switch (v.seq_kind()) {
    case SeqKind::kTuple:
      for (const Value& item : v.as_list())
        if (!is_hashable(item)) return false;
      return true;
    case SeqKind::kGenerator:
    case SeqKind::kValuesView:
      return true;  // hashed by identity
    default:
      return false;
  }
}

void check_hashable(const Value& v) {
  if (is_hashable(v)) return;
  if (v.is_tuple())  // Python names the element that cannot be hashed
    for (const Value& item : v.as_list()) check_hashable(item);
  template_fail("unhashable type: '{}'", v.type_name());
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case ValueKind::kUndefined:
    case ValueKind::kNone:
      return true;
    case ValueKind::kString:
      return a.as_string() == b.as_string();
    case ValueKind::kList:
      if (a.is_generator() || a.seq_kind() == SeqKind::kValuesView)  // compared by identity
        return &a.as_list() == &b.as_list();
      return a.seq_kind() == b.seq_kind() && sequences_equal(a.as_list(), b.as_list());
    case ValueKind::kDict:
      return dicts_equal(a.as_dict(), b.as_dict());
    case ValueKind::kNamespace:
      return &a.as_namespace() == &b.as_namespace();
    case ValueKind::kCallable:
      return &a.as_callable() == &b.as_callable();
    default:
      return false;
  }
}

int compare_values(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (!a.is_float() && !b.is_float()) return three_way(a.as_int(), b.as_int());
    return three_way(a.as_float(), b.as_float());
  }
  if (a.is_string() && b.is_string()) return three_way(a.as_string(), b.as_string());
  if (a.is_list_or_tuple() && b.is_list_or_tuple() && a.seq_kind() == b.seq_kind()) {
    const auto& x = a.as_list();
    const auto& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (values_equal(x[i], y[i])) continue;
      return compare_values(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  fail_unorderable(a, b);
}

std::string format_python_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(result.ptr - buf));
  std::string sign;
  if (!sci.empty() && sci[0] == '-') {
    sign = "-";
    sci.remove_prefix(1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos))
    if (c != '.') digits.push_back(c);
  const int exponent = std::stoi(std::string(sci.substr(e_pos + 1)));
  const int decpt = exponent + 1;  // value = 0.DIGITS * 10^decpt
  const int n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return fmt::format("{}0.{}{}", sign, std::string(-decpt, '0'), digits);
    if (decpt < n)
      return fmt::format("{}{}.{}", sign, digits.substr(0, decpt), digits.substr(decpt));
    return sign + digits + std::string(decpt - n, '0') + ".0";
  }
  std::string mantissa = digits.substr(0, 1);
  if (n > 1) mantissa += fmt::format(".{}", digits.substr(1));
  const int e = decpt - 1;
  return sign + mantissa + fmt::format("e{}{:02d}", e < 0 ? '-' : '+', std::abs(e));
}

std::string to_python_str(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return "";
    case ValueKind::kNone:
      return "None";
    case ValueKind::kBool:
      return v.as_bool() ? "True" : "False";
    case ValueKind::kInt:
      return std::to_string(v.as_int());
    case ValueKind::kFloat:
      return format_python_float(v.as_float());
    case ValueKind::kString:
      return v.as_string();
    case ValueKind::kCallable:
      if (v.as_callable().kind == CallableKind::kMacro)
        return fmt::format("<Macro '{}'>", v.as_callable().name);
      return fmt::format("<function {}>", v.as_callable().name);
    default:
      return python_repr(v);
  }
}

std::string python_repr(const Value& v) {
  std::string out;
  repr_into(out, v, 0);
  return out;
}

}  // namespace tandem::chat
