// Passes over a parsed template: which special names a macro body reads, and Jinja's rule
// for unknown filter/test names (rejected at parse time outside conditionals).
#include "chat/ast_checks.h"

#include "chat/template_error.h"

namespace tandem::chat {
namespace {

template <typename Fn>
void visit_expr(const Expr* e, const Fn& fn) {
  if (e == nullptr) return;
  fn(*e);
  for (const auto& c : e->children) visit_expr(c.get(), fn);
  for (const auto& kv : e->kwargs) visit_expr(kv.second.get(), fn);
}

template <typename Fn>
void visit_body_exprs(const Body& body, const Fn& fn) {
  for (const auto& s : body) {
    visit_expr(s->expr.get(), fn);
    visit_expr(s->cond.get(), fn);
    for (const auto& [cond, b] : s->branches) {
      visit_expr(cond.get(), fn);
      visit_body_exprs(b, fn);
    }
    visit_body_exprs(s->body, fn);
    visit_body_exprs(s->else_body, fn);
    for (const auto& p : s->params) visit_expr(p.default_value.get(), fn);
    for (const auto& f : s->filters) visit_expr(f.get(), fn);
    for (const auto& a : s->assignments) visit_expr(a.second.get(), fn);
  }
}

}  // namespace

void note_special_names(Stmt& s) {
  visit_body_exprs(s.body, [&](const Expr& e) {
    if (e.kind != ExprKind::kName) return;
    s.uses_varargs |= e.name == "varargs";
    s.uses_kwargs |= e.name == "kwargs";
    s.uses_caller |= e.name == "caller";
  });
}

namespace {

// Unknown filters/tests fail at parse time, except inside `if` statements and conditional
// expressions ("soft" contexts) where Jinja defers the error to run time. A for loop or macro
// body starts a new, non-soft frame.
void check_unknown(const Expr* e, bool soft) {
  if (e == nullptr) return;
  if (e->unknown && !soft) {
    const bool filter = e->kind == ExprKind::kFilter;
    throw TemplateError(e->line,
                        fmt::format("No {} named '{}'.", filter ? "filter" : "test", e->name));
  }
  const bool child_soft = soft || e->kind == ExprKind::kCond;
  for (const auto& c : e->children) check_unknown(c.get(), child_soft);
  for (const auto& kv : e->kwargs) check_unknown(kv.second.get(), child_soft);
}

void check_unknown(const Body& body, bool soft) {
  for (const auto& s : body) {
    const bool is_if = s->kind == StmtKind::kIf;
    const bool new_frame =
        s->kind == StmtKind::kFor || s->kind == StmtKind::kMacro || s->kind == StmtKind::kCallBlock;
    check_unknown(s->expr.get(), soft);
    check_unknown(s->cond.get(), soft);
    for (const auto& [cond, b] : s->branches) {
      check_unknown(cond.get(), true);
      check_unknown(b, true);
    }
    check_unknown(s->body, new_frame ? false : soft || is_if);
    check_unknown(s->else_body, new_frame ? false : soft || is_if);
    for (const auto& p : s->params) check_unknown(p.default_value.get(), soft);
    for (const auto& f : s->filters) check_unknown(f.get(), soft);
    for (const auto& a : s->assignments) check_unknown(a.second.get(), soft);
  }
}

}  // namespace

void check_unknown_names(const Body& body) { check_unknown(body, false); }

}  // namespace tandem::chat
