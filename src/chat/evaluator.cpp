// Tree-walking evaluator for chat templates.
#include "chat/evaluator.h"

#include "chat/filters.h"
#include "chat/globals.h"
#include "chat/methods.h"
#include "chat/operators.h"
#include "chat/template_error.h"
#include "chat/template_tests.h"

namespace tandem::chat {
namespace {

using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { kNormal, kBreak, kContinue };

// Counts nesting of exec/eval calls and fails past the limit (bounds native stack use).
class DepthGuard {
 public:
  explicit DepthGuard(RenderState& state) : state_(state) {
    if (++state_.eval_depth > state_.limits().max_eval_depth)
      limit_fail("template recursion deeper than {} levels", state_.limits().max_eval_depth);
  }
  ~DepthGuard() { --state_.eval_depth; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;

 private:
  RenderState& state_;
};

ScopePtr child_scope(const ScopePtr& parent) {
  auto scope = std::make_shared<Scope>();
  scope->parent = parent;
  return scope;
}

class Renderer {
 public:
  explicit Renderer(RenderState& state) : state_(state) {}

  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const auto& stmt : body) {
      const Flow flow = exec(*stmt, scope, out);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

 private:
  // ------------------------------------------------------------------ statements
  Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
    DepthGuard guard(state_);
    state_.step();
    try {
      return exec_inner(s, scope, out);
    } catch (const TemplateError& e) {
      if (e.line() == 0) throw e.with_line(s.line);
      throw;
    }
  }

  Flow exec_inner(const Stmt& s, const ScopePtr& scope, std::string& out) {
    switch (s.kind) {
      case StmtKind::kText:
        emit(out, s.text);
        return Flow::kNormal;
      case StmtKind::kPrint:
        emit(out, to_python_str(eval(*s.expr, *scope)));
        return Flow::kNormal;
      case StmtKind::kIf:
        return exec_if(s, scope, out);
      case StmtKind::kFor:
        exec_for(s, scope, out);
        return Flow::kNormal;
      case StmtKind::kSet:
        assign(s, *scope, eval(*s.expr, *scope));
        return Flow::kNormal;
      case StmtKind::kSetAttr:
        exec_set_attr(s, *scope);
        return Flow::kNormal;
      case StmtKind::kSetBlock:
        scope->vars[s.targets[0]] = Value::string(render_filtered(s, scope));
        return Flow::kNormal;
      case StmtKind::kMacro:
        define_macro(s, scope);
        return Flow::kNormal;
      case StmtKind::kCallBlock:
        emit(out, to_python_str(exec_call_block(s, scope)));
        return Flow::kNormal;
      case StmtKind::kFilterBlock:
        emit(out, render_filtered(s, scope));
        return Flow::kNormal;
      case StmtKind::kWith:
        exec_with(s, scope, out);
        return Flow::kNormal;
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
      case StmtKind::kGeneration:
        return exec_body(s.body, scope, out);
    }
    return Flow::kNormal;
  }

  void emit(std::string& out, const std::string& text) {
    state_.check_string_size(out.size() + text.size());
    state_.charge_bytes(text.size());
    out += text;
  }

  Flow exec_if(const Stmt& s, const ScopePtr& scope, std::string& out) {
    for (const auto& [cond, body] : s.branches)
      if (eval(*cond, *scope).truthy()) return exec_body(body, scope, out);
    return exec_body(s.else_body, scope, out);
  }

  // Binds for/set targets: one name, or unpacking an iterable into several.
  void assign(const Stmt& s, Scope& scope, const Value& value) {
    if (!s.unpack) {
      scope.vars[s.targets[0]] = value;
      return;
    }
    const std::vector<Value> items = iterate(value);
    if (items.size() < s.targets.size())
      template_fail("not enough values to unpack (expected {}, got {})", s.targets.size(),
                    items.size());
    if (items.size() > s.targets.size())
      template_fail("too many values to unpack (expected {})", s.targets.size());
    for (size_t i = 0; i < items.size(); ++i) scope.vars[s.targets[i]] = items[i];
  }

  void exec_set_attr(const Stmt& s, const Scope& scope) {
    const Value* target = scope.find(s.targets[0]);
    if (target == nullptr || !target->is_namespace())
      template_fail("cannot assign attribute on non-namespace object");
    target->as_namespace().attrs.set(Value::string(s.text), eval(*s.expr, scope));
  }

  void exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
    std::vector<Value> items = iterate(eval(*s.expr, *scope));
    if (s.cond) {
      std::vector<Value> kept;
      for (Value& item : items) {
        state_.loop_iteration();
        auto probe = child_scope(scope);
        assign(s, *probe, item);
        if (eval(*s.cond, *probe).truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    const auto index = std::make_shared<int64_t>(0);
    const Value cycle = Value::callable("loop.cycle", [index](RenderState&, CallArgs& args) {
      if (args.positional.empty()) template_fail("no items for cycling given");
      return args.positional[static_cast<size_t>(*index) % args.positional.size()];
    });
    const Value changed = make_changed();
    // As compiled by Jinja, `else` runs unless some iteration reached the end of the body
    // (iterations left through `continue` or `break` do not count).
    bool completed = false;
    for (size_t i = 0; i < items.size(); ++i) {
      state_.loop_iteration();
      *index = static_cast<int64_t>(i);
      auto iteration = child_scope(scope);
      assign(s, *iteration, items[i]);
      iteration->vars["loop"] = loop_object(items, i, cycle, changed);
      const Flow flow = exec_body(s.body, iteration, out);
      if (flow == Flow::kBreak) break;
      completed |= flow == Flow::kNormal;
    }
    if (!completed) exec_body(s.else_body, child_scope(scope), out);
  }

  static Value make_changed() {
    auto last = std::make_shared<std::optional<std::vector<Value>>>();
    return Value::callable("loop.changed", [last](RenderState&, CallArgs& args) {
      if (last->has_value() && (*last)->size() == args.positional.size()) {
        bool same = true;
        for (size_t i = 0; i < args.positional.size() && same; ++i)
          same = values_equal((**last)[i], args.positional[i]);
        if (same) return Value::boolean(false);
      }
      *last = args.positional;
      return Value::boolean(true);
    });
  }

  static Value loop_object(const std::vector<Value>& items, size_t i, const Value& cycle,
                           const Value& changed) {
    static const Value kIndex = Value::string("index"), kIndex0 = Value::string("index0"),
                       kRevindex = Value::string("revindex"),
                       kRevindex0 = Value::string("revindex0"), kFirst = Value::string("first"),
                       kLast = Value::string("last"), kLength = Value::string("length"),
                       kDepth = Value::string("depth"), kDepth0 = Value::string("depth0"),
                       kPrev = Value::string("previtem"), kNext = Value::string("nextitem"),
                       kCycle = Value::string("cycle"), kChanged = Value::string("changed");
    const auto n = static_cast<int64_t>(items.size());
    const auto k = static_cast<int64_t>(i);
    Dict loop;
    loop.reserve(13);
    loop.insert_new(kIndex, Value::integer(k + 1));
    loop.insert_new(kIndex0, Value::integer(k));
    loop.insert_new(kRevindex, Value::integer(n - k));
    loop.insert_new(kRevindex0, Value::integer(n - k - 1));
    loop.insert_new(kFirst, Value::boolean(k == 0));
    loop.insert_new(kLast, Value::boolean(k == n - 1));
    loop.insert_new(kLength, Value::integer(n));
    loop.insert_new(kDepth, Value::integer(1));
    loop.insert_new(kDepth0, Value::integer(0));
    if (k > 0) loop.insert_new(kPrev, items[i - 1]);
    if (k + 1 < n) loop.insert_new(kNext, items[i + 1]);
    loop.insert_new(kCycle, cycle);
    loop.insert_new(kChanged, changed);
    return Value::dict(std::move(loop));
  }

  // Renders a block body (set-block / filter-block) in a child scope and applies its filters.
  std::string render_filtered(const Stmt& s, const ScopePtr& scope) {
    std::string body;
    exec_body(s.body, child_scope(scope), body);
    Value v = Value::string(std::move(body));
    for (const auto& filter : s.filters) v = apply_filter_node(*filter, v, *scope);
    return to_python_str(v);
  }

  void exec_with(const Stmt& s, const ScopePtr& scope, std::string& out) {
    auto inner = child_scope(scope);
    for (const auto& [name, expr] : s.assignments) inner->vars[name] = eval(*expr, *inner);
    exec_body(s.body, inner, out);
  }

  Value make_macro(const Stmt& s, const ScopePtr& scope, std::string name) {
    state_.track_scope(scope);  // the macro closes over `scope`: break the cycle at the end
    const Stmt* stmt = &s;
    return Value::callable(
        std::move(name),
        [this, stmt, scope](RenderState&, CallArgs& args) {
          return call_macro(*stmt, scope, args);
        },
        CallableKind::kMacro);
  }

  void define_macro(const Stmt& s, const ScopePtr& scope) {
    scope->vars[s.text] = make_macro(s, scope, s.text);
  }

  Value exec_call_block(const Stmt& s, const ScopePtr& scope) {
    const Expr& call = *s.expr;
    CallArgs args = eval_args(call, *scope);
    args.keyword.emplace_back("caller", make_macro(s, scope, "caller"));
    return call_value(eval(*call.children[0], *scope), args);
  }

  Value call_macro(const Stmt& m, const ScopePtr& def_scope, CallArgs& args);

  // ------------------------------------------------------------------ expressions
  Value eval(const Expr& e, const Scope& scope) {
    DepthGuard guard(state_);
    state_.step();
    try {
      return eval_inner(e, scope);
    } catch (const TemplateError& err) {
      if (err.line() == 0) throw err.with_line(e.line);
      throw;
    }
  }

  Value eval_inner(const Expr& e, const Scope& scope);
  Value eval_name(const Expr& e, const Scope& scope);
  Value eval_sequence(const Expr& e, const Scope& scope);
  Value eval_dict(const Expr& e, const Scope& scope);
  Value eval_compare(const Expr& e, const Scope& scope);
  Value eval_call(const Expr& e, const Scope& scope);
  Value eval_test(const Expr& e, const Scope& scope);
  CallArgs eval_args(const Expr& e, const Scope& scope);
  Value call_value(const Value& fn, CallArgs& args);
  Value apply_filter_node(const Expr& f, const Value& input, const Scope& scope);

  RenderState& state_;
};

Value Renderer::call_macro(const Stmt& m, const ScopePtr& def_scope, CallArgs& args) {
  if (state_.call_depth >= state_.limits().max_call_depth)
    limit_fail("macro calls nested deeper than {} levels", state_.limits().max_call_depth);
  const std::string name = m.kind == StmtKind::kMacro ? m.text : "caller";
  auto scope = child_scope(def_scope);
  std::vector<bool> bound(m.params.size(), false);
  std::vector<Value> varargs;
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < m.params.size()) {
      scope->vars[m.params[i].name] = args.positional[i];
      bound[i] = true;
    } else if (m.uses_varargs) {
      varargs.push_back(args.positional[i]);
    } else {
      template_fail("macro '{}' takes not more than {} argument(s)", name, m.params.size());
    }
  }
  Dict kwargs;
  for (const auto& [key, value] : args.keyword) {
    const std::string& wanted = key;  // (clang 14 cannot capture a structured binding)
    const auto it = std::find_if(m.params.begin(), m.params.end(),
                                 [&](const MacroParam& p) { return p.name == wanted; });
    if (it != m.params.end()) {
      const auto i = static_cast<size_t>(it - m.params.begin());
      if (bound[i]) template_fail("macro '{}' got multiple values for argument '{}'", name, key);
      scope->vars[key] = value;
      bound[i] = true;
    } else if (key == "caller") {
      scope->vars["caller"] = value;
    } else if (m.uses_kwargs) {
      kwargs.set(Value::string(key), value);
    } else {
      template_fail("macro '{}' takes no keyword argument '{}'", name, key);
    }
  }
  for (size_t i = 0; i < m.params.size(); ++i) {
    if (bound[i]) continue;
    const MacroParam& p = m.params[i];
    scope->vars[p.name] =
        p.default_value ? eval(*p.default_value, *scope)
                        : Value::undefined(fmt::format("parameter '{}' was not provided", p.name));
  }
  scope->vars["varargs"] = Value::tuple(std::move(varargs));
  scope->vars["kwargs"] = Value::dict(std::move(kwargs));
  ++state_.call_depth;
  std::string out;
  try {
    exec_body(m.body, scope, out);
  } catch (...) {
    --state_.call_depth;
    throw;
  }
  --state_.call_depth;
  return Value::string(std::move(out));
}

Value Renderer::eval_inner(const Expr& e, const Scope& scope) {
  switch (e.kind) {
    case ExprKind::kConst:
      return e.value;
    case ExprKind::kName:
      return eval_name(e, scope);
    case ExprKind::kList:
    case ExprKind::kTuple:
      return eval_sequence(e, scope);
    case ExprKind::kDict:
      return eval_dict(e, scope);
    case ExprKind::kAttr:
      return get_attr(eval(*e.children[0], scope), e.name);
    case ExprKind::kItem:
      return get_item(eval(*e.children[0], scope), eval(*e.children[1], scope));
    case ExprKind::kSlice: {
      const auto part = [&](size_t i) {
        return e.children[i] ? eval(*e.children[i], scope) : Value::none();
      };
      return slice_value(state_, eval(*e.children[0], scope), part(1), part(2), part(3));
    }
    case ExprKind::kCall:
      return eval_call(e, scope);
    case ExprKind::kFilter:
      return apply_filter_node(e, eval(*e.children[0], scope), scope);
    case ExprKind::kTest:
      return eval_test(e, scope);
    case ExprKind::kNeg:
      return negate(eval(*e.children[0], scope));
    case ExprKind::kPos:
      return unary_plus(eval(*e.children[0], scope));
    case ExprKind::kNot:
      return Value::boolean(!eval(*e.children[0], scope).truthy());
    case ExprKind::kAnd: {
      Value left = eval(*e.children[0], scope);
      return left.truthy() ? eval(*e.children[1], scope) : left;
    }
    case ExprKind::kOr: {
      Value left = eval(*e.children[0], scope);
      return left.truthy() ? left : eval(*e.children[1], scope);
    }
    case ExprKind::kBinary:
      return binary_op(state_, e.binary_op, eval(*e.children[0], scope),
                       eval(*e.children[1], scope));
    case ExprKind::kCompare:
      return eval_compare(e, scope);
    case ExprKind::kCond:
      if (eval(*e.children[0], scope).truthy()) return eval(*e.children[1], scope);
      if (e.children[2]) return eval(*e.children[2], scope);
      return Value::undefined(fmt::format(
          "the inline if-expression on line {} evaluated to false and no else section was "
          "defined.",
          e.line));
  }
  template_fail("unknown expression");
}

Value Renderer::eval_name(const Expr& e, const Scope& scope) {
  if (const Value* v = scope.find(e.name)) return *v;
  if (const Value* g = find_global(e.name)) return *g;
  return Value::undefined(fmt::format("'{}' is undefined", e.name));
}

Value Renderer::eval_sequence(const Expr& e, const Scope& scope) {
  std::vector<Value> items;
  items.reserve(e.children.size());
  for (const auto& c : e.children) items.push_back(eval(*c, scope));
  return e.kind == ExprKind::kTuple ? Value::tuple(std::move(items))
                                    : Value::list(std::move(items));
}

Value Renderer::eval_dict(const Expr& e, const Scope& scope) {
  Dict d;
  for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
    Value key = eval(*e.children[i], scope);
    check_hashable(key);
    d.set(std::move(key), eval(*e.children[i + 1], scope));
  }
  return Value::dict(std::move(d));
}

Value Renderer::eval_compare(const Expr& e, const Scope& scope) {
  Value left = eval(*e.children[0], scope);
  for (size_t i = 0; i < e.compare_ops.size(); ++i) {
    Value right = eval(*e.children[i + 1], scope);
    if (!compare_op(e.compare_ops[i], left, right)) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

CallArgs Renderer::eval_args(const Expr& e, const Scope& scope) {
  CallArgs args;
  for (size_t i = 1; i < e.children.size(); ++i)
    args.positional.push_back(eval(*e.children[i], scope));
  for (const auto& [key, expr] : e.kwargs) args.keyword.emplace_back(key, eval(*expr, scope));
  return args;
}

Value Renderer::call_value(const Value& fn, CallArgs& args) {
  if (fn.is_callable()) return fn.as_callable().call(state_, args);
  if (fn.is_undefined()) fail_undefined(fn);
  template_fail("'{}' object is not callable", fn.type_name());
}

Value Renderer::eval_call(const Expr& e, const Scope& scope) {
  const Expr& callee = *e.children[0];
  if (callee.kind == ExprKind::kAttr) {
    // obj.method(...): call str/dict/list methods directly, without a bound-method value.
    const Value obj = eval(*callee.children[0], scope);
    if (obj.is_undefined()) fail_undefined(obj);
    if (find_method(obj, callee.name) == MethodKind::kSafe &&
        !(callee.name.size() >= 2 && callee.name[0] == '_' && callee.name[1] == '_')) {
      CallArgs args = eval_args(e, scope);
      return call_method(state_, obj, callee.name, args);
    }
    const Value fn = get_attr(obj, callee.name);
    CallArgs args = eval_args(e, scope);
    return call_value(fn, args);
  }
  const Value fn = eval(callee, scope);
  CallArgs args = eval_args(e, scope);
  return call_value(fn, args);
}

Value Renderer::apply_filter_node(const Expr& f, const Value& input, const Scope& scope) {
  CallArgs args = eval_args(f, scope);
  return apply_filter(state_, f.name, input, args);
}

Value Renderer::eval_test(const Expr& e, const Scope& scope) {
  const Value input = eval(*e.children[0], scope);
  CallArgs args = eval_args(e, scope);
  const bool result = apply_test(state_, e.name, input, args);
  return Value::boolean(result != e.negated);
}

}  // namespace

void render_program(RenderState& state, const Program& program, std::shared_ptr<Scope> root,
                    std::string& out) {
  Renderer(state).exec_body(program.body, root, out);
}

}  // namespace tandem::chat
