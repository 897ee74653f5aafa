// RenderState: the per-render mutable state shared by the evaluator and the builtins: resource
// limits and their counters (templates come from requests, so every render is bounded in time,
// memory and recursion), the variable scopes, and the namespaces created during the render.
#pragma once
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/value.h"

namespace tandem::chat {

struct RenderLimits {
  size_t max_output_bytes = size_t{64} << 20;  // the rendered text, and any one string value
  size_t max_list_items = size_t{1} << 20;     // any one list built by the template
  int64_t max_loop_iterations = 1'000'000;     // all loop iterations of one render
  int64_t max_steps = 20'000'000;              // expression/statement evaluations
  int64_t max_work_bytes = int64_t{1} << 30;   // bytes of strings and list slots built
  int max_call_depth = 100;                    // nested macro calls
  int max_eval_depth = 1500;                   // nested statement/expression evaluation
};

struct RenderOptions {
  RenderLimits limits;
  // The clock strftime_now() reads; unset: the current local time.
  std::optional<std::time_t> now;
};

// One variable scope; lookups walk to the parent (the template scope has none).
struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;

  [[nodiscard]] const Value* find(const std::string& name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent.get()) {
      const auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};

class RenderState {
 public:
  explicit RenderState(const RenderOptions& options) : options_(options) {}
  // Clears every tracked namespace and scope: breaks reference cycles (a namespace holding
  // itself, a macro stored in the scope it closes over) so nothing leaks.
  ~RenderState();
  RenderState(const RenderState&) = delete;
  RenderState& operator=(const RenderState&) = delete;

  [[nodiscard]] const RenderLimits& limits() const { return options_.limits; }
  [[nodiscard]] std::time_t now() const;
  // True when RenderOptions::now pins the clock (tests).
  [[nodiscard]] bool clock_fixed() const { return options_.now.has_value(); }

  // Counters; each throws TemplateError when its limit is exceeded.
  void step();
  void loop_iteration();
  void charge_bytes(size_t n);
  // Checks, before building it, that a string/list of this size stays within the limits.
  void check_string_size(size_t n) const;
  void check_list_size(size_t n) const;

  Value new_namespace(Dict attrs);
  void track_scope(std::shared_ptr<Scope> scope);

  int call_depth = 0;
  int eval_depth = 0;

 private:
  const RenderOptions& options_;
  int64_t steps_ = 0;
  int64_t iterations_ = 0;
  int64_t work_bytes_ = 0;
  std::vector<std::shared_ptr<Namespace>> namespaces_;
  std::vector<std::shared_ptr<Scope>> scopes_;
};

}  // namespace tandem::chat
