// Value: the dynamic value of the chat-template engine, with Python/Jinja2 semantics.
// Kinds mirror what templates see in transformers: Jinja's Undefined, None, bool, int, float,
// str, list/tuple, dict (insertion-ordered), namespace() objects and callables (macros, bound
// methods, globals). Strings, lists and dicts are immutable and shared (copying a Value is
// cheap and thread-safe); only namespaces are mutable, as in Jinja's ImmutableSandbox.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace tandem::chat {

class Value;
class RenderState;

enum class ValueKind : uint8_t {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,  // list, tuple or generator (see SeqKind)
  kDict,
  kNamespace,
  kCallable,
};

// Deepest list/dict nesting a value may have (bounds every recursive walk over values).
inline constexpr int kMaxValueDepth = 512;
// Longest repr()/str() of a container built (a list holding one large string many times
// would otherwise print to an unbounded size before any render limit sees it).
inline constexpr size_t kMaxReprBytes = size_t{64} << 20;

// A list-like value: Python list, tuple, the one-shot iterators (generators) that Jinja
// filters such as map/select/reverse return (always true, no len(), not subscriptable), or a
// dict view from d.keys()/values()/items() (has len(), not subscriptable, not JSON).
enum class SeqKind : uint8_t { kList, kTuple, kGenerator, kKeysView, kValuesView, kItemsView };

struct ListData {
  std::vector<Value> items;
  SeqKind seq = SeqKind::kList;
  int depth = 1;  // 1 + deepest child list/dict
  // kGenerator only: the error a lazy Jinja generator raises when consumed (empty: none).
  std::string deferred_error;
};

// An insertion-ordered dict. Keys are usually strings; any hashable Value works (linear or
// indexed look-up by Python equality).
class Dict {
 public:
  [[nodiscard]] const Value* find(const Value& key) const;
  [[nodiscard]] const Value* find(std::string_view key) const;
  // Inserts or replaces (a replaced key keeps its position, as in Python).
  void set(Value key, Value value);
  // Appends a key known not to be present (JSON object members, loop attributes).
  void insert_new(Value key, Value value);
  // reserve and size are out of line: Value is incomplete here, and clang instantiates eagerly.
  void reserve(size_t n);
  [[nodiscard]] const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }
  [[nodiscard]] size_t size() const;
  [[nodiscard]] int depth() const { return depth_; }
  void clear();

 private:
  std::vector<std::pair<Value, Value>> entries_;
  std::unordered_map<std::string, size_t> string_index_;  // string key -> entries_ position
  int depth_ = 1;
};

// Jinja's namespace(): the one mutable object, assigned through {% set ns.attr = ... %}.
struct Namespace {
  Dict attrs;
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

enum class CallableKind : uint8_t { kFunction, kMacro };

struct Callable {
  std::string name;
  std::function<Value(RenderState&, CallArgs&)> call;
  CallableKind kind = CallableKind::kFunction;
};

class Value {
 public:
  Value() = default;  // Undefined
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double d);
  static Value string(std::string s);
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items);
  static Value generator(std::vector<Value> items);
  static Value sequence(std::vector<Value> items, SeqKind kind);
  // A generator whose consumption raises `error` (Jinja filters fail lazily).
  static Value failed_generator(std::string error);
  static Value dict(Dict d);
  static Value make_namespace(std::shared_ptr<Namespace> ns);
  static Value callable(std::string name, std::function<Value(RenderState&, CallArgs&)> fn,
                        CallableKind kind = CallableKind::kFunction);
  // JSON -> Value (objects keep their key order); throws TemplateError past kMaxValueDepth.
  static Value from_json(const nlohmann::ordered_json& json);

  [[nodiscard]] ValueKind kind() const { return kind_; }
  [[nodiscard]] bool is_undefined() const { return kind_ == ValueKind::kUndefined; }
  [[nodiscard]] bool is_none() const { return kind_ == ValueKind::kNone; }
  [[nodiscard]] bool is_bool() const { return kind_ == ValueKind::kBool; }
  [[nodiscard]] bool is_int() const { return kind_ == ValueKind::kInt; }
  [[nodiscard]] bool is_float() const { return kind_ == ValueKind::kFloat; }
  // bool, int or float (Python numbers; bool is an int subclass).
  [[nodiscard]] bool is_number() const {
    return kind_ == ValueKind::kBool || kind_ == ValueKind::kInt || kind_ == ValueKind::kFloat;
  }
  [[nodiscard]] bool is_string() const { return kind_ == ValueKind::kString; }
  [[nodiscard]] bool is_list() const { return kind_ == ValueKind::kList; }
  [[nodiscard]] bool is_tuple() const { return is_list() && seq_kind() == SeqKind::kTuple; }
  [[nodiscard]] bool is_generator() const { return is_list() && seq_kind() == SeqKind::kGenerator; }
  // A list proper (not a tuple, generator or dict view).
  [[nodiscard]] bool is_plain_list() const { return is_list() && seq_kind() == SeqKind::kList; }
  // A list or tuple: indexable, sliceable, concatenable, JSON-serializable.
  [[nodiscard]] bool is_list_or_tuple() const {
    return is_list() && (seq_kind() == SeqKind::kList || seq_kind() == SeqKind::kTuple);
  }
  [[nodiscard]] SeqKind seq_kind() const { return list_items_data().seq; }
  [[nodiscard]] const std::string& deferred_error() const {
    return list_items_data().deferred_error;
  }
  [[nodiscard]] bool is_dict() const { return kind_ == ValueKind::kDict; }
  [[nodiscard]] bool is_namespace() const { return kind_ == ValueKind::kNamespace; }
  [[nodiscard]] bool is_callable() const { return kind_ == ValueKind::kCallable; }

  [[nodiscard]] bool as_bool() const { return std::get<bool>(data_); }
  // int value of a bool or int.
  [[nodiscard]] int64_t as_int() const;
  // float value of any number.
  [[nodiscard]] double as_float() const;
  [[nodiscard]] const std::string& as_string() const;
  [[nodiscard]] const std::vector<Value>& as_list() const { return list_items_data().items; }
  [[nodiscard]] const Dict& as_dict() const;
  [[nodiscard]] Namespace& as_namespace() const;
  [[nodiscard]] const Callable& as_callable() const;
  [[nodiscard]] const std::string& undefined_hint() const;
  // List/dict nesting depth (0 for scalars).
  [[nodiscard]] int depth() const;

  // Python truthiness.
  [[nodiscard]] bool truthy() const;
  // Python type name: 'str', 'int', 'list', 'dict', 'NoneType', ...
  [[nodiscard]] std::string type_name() const;

 private:
  const ListData& list_items_data() const;

  ValueKind kind_ = ValueKind::kUndefined;
  std::variant<std::monostate, bool, int64_t, double, std::shared_ptr<const std::string>,
               std::shared_ptr<const ListData>, std::shared_ptr<const Dict>,
               std::shared_ptr<Namespace>, std::shared_ptr<const Callable>>
      data_;
};

// Python hash(): false for lists, dicts and key/item views (tuples: when their items are).
[[nodiscard]] bool is_hashable(const Value& v);
// Throws Python's "unhashable type" TypeError unless is_hashable(v).
void check_hashable(const Value& v);
// Python ==, across kinds (1 == 1.0 == True; list != tuple; undefined == undefined).
[[nodiscard]] bool values_equal(const Value& a, const Value& b);
// Python ordering (<) for sort/min/max and comparisons: numbers, strings, lists of those.
// Returns <0, 0, >0; throws TemplateError for unorderable kinds.
[[nodiscard]] int compare_values(const Value& a, const Value& b);
// Python str(): what {{ x }} prints (None -> "None", undefined -> "", lists in repr form).
[[nodiscard]] std::string to_python_str(const Value& v);
// Python repr().
[[nodiscard]] std::string python_repr(const Value& v);
// Python float repr: shortest round-trip digits, "1.0", "1e+16", "1.5e-05", "inf", "nan".
[[nodiscard]] std::string format_python_float(double d);

}  // namespace tandem::chat
