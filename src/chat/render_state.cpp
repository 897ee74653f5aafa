// RenderState: limit counters and cycle-breaking clean-up.
#include "chat/render_state.h"

#include "chat/template_error.h"

namespace tandem::chat {

RenderState::~RenderState() {
  for (auto& ns : namespaces_) ns->attrs.clear();
  for (auto& scope : scopes_) {
    scope->vars.clear();
    scope->parent.reset();
  }
}

std::time_t RenderState::now() const {
  return options_.now.has_value() ? *options_.now : std::time(nullptr);
}

void RenderState::step() {
  if (++steps_ > options_.limits.max_steps)
    limit_fail("template exceeded {} evaluation steps", options_.limits.max_steps);
}

void RenderState::loop_iteration() {
  step();
  if (++iterations_ > options_.limits.max_loop_iterations)
    limit_fail("template exceeded {} loop iterations", options_.limits.max_loop_iterations);
}

void RenderState::charge_bytes(size_t n) {
  work_bytes_ += static_cast<int64_t>(n);
  if (work_bytes_ > options_.limits.max_work_bytes)
    limit_fail("template exceeded its work budget of {} bytes built",
               options_.limits.max_work_bytes);
}

void RenderState::check_string_size(size_t n) const {
  if (n > options_.limits.max_output_bytes)
    limit_fail("string of {} bytes exceeds the limit of {} bytes", n,
               options_.limits.max_output_bytes);
}

void RenderState::check_list_size(size_t n) const {
  if (n > options_.limits.max_list_items)
    limit_fail("list of {} items exceeds the limit of {} items", n, options_.limits.max_list_items);
}

Value RenderState::new_namespace(Dict attrs) {
  auto ns = std::make_shared<Namespace>();
  ns->attrs = std::move(attrs);
  namespaces_.push_back(ns);
  return Value::make_namespace(std::move(ns));
}

void RenderState::track_scope(std::shared_ptr<Scope> scope) { scopes_.push_back(std::move(scope)); }

}  // namespace tandem::chat
