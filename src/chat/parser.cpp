// Recursive-descent parser for the Jinja2 subset, mirroring jinja2/parser.py.
#include "chat/parser.h"

#include <algorithm>
#include <initializer_list>

#include "chat/ast_checks.h"
#include "chat/filters.h"
#include "chat/lexer.h"
#include "chat/template_error.h"
#include "chat/template_tests.h"

namespace tandem::chat {
namespace {

// Deepest expression tree (also bounds left-associative chains such as 1+1+1+...).
constexpr int kMaxExprDepth = 256;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Program parse() {
    Program program;
    program.body = parse_body({}, "template");
    if (peek().kind != TokenKind::kEnd)
      fail(peek(), fmt::format("unexpected '{}'", describe(peek())));
    return program;
  }

 private:
  // ------------------------------------------------------------------ token stream
  const Token& peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& next() {
    const Token& t = peek();
    if (pos_ < tokens_.size() - 1) ++pos_;
    return t;
  }
  bool at_op(std::string_view op, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.kind == TokenKind::kOperator && t.text == op;
  }
  bool at_name(std::string_view name, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.kind == TokenKind::kName && t.text == name;
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::kText:
        return "template text";
      case TokenKind::kVarBegin:
        return "{{";
      case TokenKind::kVarEnd:
        return "}}";
      case TokenKind::kBlockBegin:
        return "{%";
      case TokenKind::kBlockEnd:
        return "%}";
      case TokenKind::kEnd:
        return "end of template";
      case TokenKind::kString:
        return "string literal";
      default:
        return t.text;
    }
  }
  [[noreturn]] static void fail(const Token& t, const std::string& message) {
    throw TemplateError(t.line, message);
  }
  void expect_op(std::string_view op) {
    if (!at_op(op)) fail(peek(), fmt::format("expected '{}', got '{}'", op, describe(peek())));
    next();
  }
  std::string expect_name() {
    if (peek().kind != TokenKind::kName)
      fail(peek(), fmt::format("expected a name, got '{}'", describe(peek())));
    return next().text;
  }
  void expect_block_end() {
    if (peek().kind != TokenKind::kBlockEnd)
      fail(peek(), fmt::format("expected end of block tag '%}}', got '{}'", describe(peek())));
    next();
  }

  class NestingGuard {
   public:
    NestingGuard(Parser& p, const Token& at) : p_(p) {
      if (++p_.nesting_ > kMaxNesting)
        fail(at, fmt::format("template nested deeper than {} levels", kMaxNesting));
    }
    ~NestingGuard() { --p_.nesting_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    Parser& p_;
  };

  // ------------------------------------------------------------------ node helpers
  ExprPtr make(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  ExprPtr finish(ExprPtr e) {
    int depth = 0;
    for (const auto& c : e->children)
      if (c) depth = std::max(depth, c->depth);
    for (const auto& kv : e->kwargs) depth = std::max(depth, kv.second->depth);
    e->depth = depth + 1;
    if (e->depth > kMaxExprDepth)
      throw TemplateError(e->line,
                          fmt::format("expression nested deeper than {} levels", kMaxExprDepth));
    return e;
  }
  ExprPtr make_unary(ExprKind kind, int line, ExprPtr operand) {
    auto e = make(kind, line);
    e->children.push_back(std::move(operand));
    return finish(std::move(e));
  }
  ExprPtr make_binary(ExprKind kind, int line, ExprPtr a, ExprPtr b) {
    auto e = make(kind, line);
    e->children.push_back(std::move(a));
    e->children.push_back(std::move(b));
    return finish(std::move(e));
  }
  StmtPtr make_stmt(StmtKind kind, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  // ------------------------------------------------------------------ statements
  // Parses text, {{ }} and {% %} until a block tag named in `end_tags` (left unconsumed,
  // positioned at its name) or the end of the template (an error when end_tags is non-empty).
  Body parse_body(std::initializer_list<std::string_view> end_tags, std::string_view opener) {
    NestingGuard guard(*this, peek());
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.kind == TokenKind::kEnd) {
        if (end_tags.size() == 0) return body;
        fail(t, fmt::format("unexpected end of template: '{}' block is never closed (expected "
                            "'{}')",
                            opener, *(end_tags.end() - 1)));
      }
      if (t.kind == TokenKind::kText) {
        auto s = make_stmt(StmtKind::kText, t.line);
        s->text = next().text;
        body.push_back(std::move(s));
      } else if (t.kind == TokenKind::kVarBegin) {
        next();
        auto s = make_stmt(StmtKind::kPrint, t.line);
        s->expr = parse_tuple(true, {}, false);
        if (peek().kind != TokenKind::kVarEnd)
          fail(peek(),
               fmt::format("expected end of print statement '}}}}', got '{}'", describe(peek())));
        next();
        body.push_back(std::move(s));
      } else if (t.kind == TokenKind::kBlockBegin) {
        const Token& name = peek(1);
        if (name.kind == TokenKind::kName &&
            std::find(end_tags.begin(), end_tags.end(), name.text) != end_tags.end()) {
          next();
          return body;
        }
        next();
        body.push_back(parse_statement());
      } else {
        fail(t, fmt::format("unexpected '{}'", describe(t)));
      }
    }
  }

  // Consumes the end tag name found by parse_body and the closing %}.
  std::string end_tag() {
    std::string name = next().text;
    expect_block_end();
    return name;
  }

  StmtPtr parse_statement() {
    const Token& t = peek();
    if (t.kind != TokenKind::kName) fail(t, "expected a tag name after '{%'");
    const std::string& tag = t.text;
    if (tag == "if") return parse_if();
    if (tag == "for") return parse_for();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "call") return parse_call_block();
    if (tag == "filter") return parse_filter_block();
    if (tag == "with") return parse_with();
    if (tag == "generation") return parse_simple_block(StmtKind::kGeneration, "endgeneration");
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail(t, fmt::format("'{}' outside loop", tag));
      auto s = make_stmt(tag == "break" ? StmtKind::kBreak : StmtKind::kContinue, t.line);
      next();
      expect_block_end();
      return s;
    }
    fail(t, fmt::format("unknown tag '{}'", tag));
  }

  StmtPtr parse_if() {
    auto s = make_stmt(StmtKind::kIf, next().line);
    while (true) {
      ExprPtr cond = parse_tuple(false, {}, false);
      expect_block_end();
      Body body = parse_body({"elif", "else", "endif"}, "if");
      s->branches.emplace_back(std::move(cond), std::move(body));
      const std::string tag = next().text;
      if (tag == "elif") continue;
      expect_block_end();
      if (tag == "else") {
        s->else_body = parse_body({"endif"}, "if");
        end_tag();
      }
      return s;
    }
  }

  // Names to assign: `a` or `a, b` or `(a, b)`.
  std::vector<std::string> parse_targets(bool* unpack) {
    const bool paren = at_op("(");
    if (paren) next();
    std::vector<std::string> names{expect_name()};
    bool comma = false;
    while (at_op(",")) {
      next();
      comma = true;
      if (peek().kind != TokenKind::kName || at_name("in")) break;
      names.push_back(expect_name());
    }
    *unpack = comma;
    if (paren) expect_op(")");
    for (const auto& n : names)
      if (n == "true" || n == "false" || n == "none" || n == "True" || n == "False" || n == "None")
        fail(peek(), fmt::format("cannot assign to '{}'", n));
    return names;
  }

  StmtPtr parse_for() {
    auto s = make_stmt(StmtKind::kFor, next().line);
    s->targets = parse_targets(&s->unpack);
    if (!at_name("in")) fail(peek(), fmt::format("expected 'in', got '{}'", describe(peek())));
    next();
    s->expr = parse_tuple(false, {"recursive"}, false);
    if (at_name("if")) {
      next();
      s->cond = parse_expression(true);
    }
    if (at_name("recursive")) fail(peek(), "recursive for loops are not supported");
    expect_block_end();
    ++loop_depth_;
    s->body = parse_body({"endfor", "else"}, "for");
    --loop_depth_;
    if (end_tag() == "else") {
      s->else_body = parse_body({"endfor"}, "for");
      end_tag();
    }
    return s;
  }

  StmtPtr parse_set() {
    const int line = next().line;
    if (peek().kind == TokenKind::kName && at_op(".", 1)) {
      auto s = make_stmt(StmtKind::kSetAttr, line);
      s->targets.push_back(next().text);
      next();
      s->text = expect_name();
      expect_op("=");
      s->expr = parse_tuple(true, {}, false);
      expect_block_end();
      return s;
    }
    bool unpack = false;
    std::vector<std::string> targets = parse_targets(&unpack);
    if (at_op("=")) {
      next();
      auto s = make_stmt(StmtKind::kSet, line);
      s->targets = std::move(targets);
      s->unpack = unpack;
      s->expr = parse_tuple(true, {}, false);
      expect_block_end();
      return s;
    }
    if (unpack) fail(peek(), "a block set assigns one name");
    auto s = make_stmt(StmtKind::kSetBlock, line);
    s->targets = std::move(targets);
    if (at_op("|")) parse_filter_chain(s->filters);
    expect_block_end();
    s->body = parse_body({"endset"}, "set");
    end_tag();
    return s;
  }

  std::vector<MacroParam> parse_params() {
    std::vector<MacroParam> params;
    expect_op("(");
    while (!at_op(")")) {
      if (!params.empty()) expect_op(",");
      if (at_op(")")) break;
      MacroParam p;
      p.name = expect_name();
      if (at_op("=")) {
        next();
        p.default_value = parse_expression(true);
      } else if (!params.empty() && params.back().default_value) {
        fail(peek(), "non-default argument follows default argument");
      }
      params.push_back(std::move(p));
    }
    next();
    return params;
  }

  // A macro-like body: `break`/`continue` of an enclosing loop are not allowed inside.
  Body parse_function_body(std::string_view end, std::string_view opener) {
    const int saved = loop_depth_;
    loop_depth_ = 0;
    Body body = parse_body({end}, opener);
    loop_depth_ = saved;
    end_tag();
    return body;
  }

  StmtPtr parse_macro() {
    auto s = make_stmt(StmtKind::kMacro, next().line);
    s->text = expect_name();
    s->params = parse_params();
    expect_block_end();
    s->body = parse_function_body("endmacro", "macro");
    note_special_names(*s);
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = make_stmt(StmtKind::kCallBlock, next().line);
    if (at_op("(")) s->params = parse_params();
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::kCall) fail(peek(), "expected a call after 'call'");
    expect_block_end();
    s->body = parse_function_body("endcall", "call");
    note_special_names(*s);
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = make_stmt(StmtKind::kFilterBlock, next().line);
    parse_filter_chain(s->filters);
    expect_block_end();
    s->body = parse_body({"endfilter"}, "filter");
    end_tag();
    return s;
  }

  StmtPtr parse_with() {
    auto s = make_stmt(StmtKind::kWith, next().line);
    while (peek().kind != TokenKind::kBlockEnd) {
      if (!s->assignments.empty()) expect_op(",");
      std::string name = expect_name();
      expect_op("=");
      s->assignments.emplace_back(std::move(name), parse_expression(true));
    }
    next();
    s->body = parse_body({"endwith"}, "with");
    end_tag();
    return s;
  }

  StmtPtr parse_simple_block(StmtKind kind, std::string_view end) {
    auto s = make_stmt(kind, next().line);
    expect_block_end();
    s->body = parse_body({end}, "generation");
    end_tag();
    return s;
  }

  // `| name(args) | name ...` (the first `|` optional) into kFilter nodes with null input.
  void parse_filter_chain(std::vector<ExprPtr>& filters) {
    bool first = true;
    while (first || at_op("|")) {
      if (at_op("|")) next();
      first = false;
      filters.push_back(parse_filter(nullptr));
    }
  }

  // ------------------------------------------------------------------ expressions
  // A comma-separated list of expressions: one expression, or a tuple when commas appear.
  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<std::string_view> extra_end,
                      bool explicit_parens) {
    const int line = peek().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (tuple_ends(extra_end)) break;
      items.push_back(parse_expression(with_condexpr));
      if (at_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens)
        fail(peek(), fmt::format("expected an expression, got '{}'", describe(peek())));
    }
    auto e = make(ExprKind::kTuple, line);
    e->children = std::move(items);
    return finish(std::move(e));
  }

  bool tuple_ends(std::initializer_list<std::string_view> extra_end) const {
    const Token& t = peek();
    if (t.kind == TokenKind::kBlockEnd || t.kind == TokenKind::kVarEnd ||
        t.kind == TokenKind::kEnd || at_op(")"))
      return true;
    return t.kind == TokenKind::kName &&
           std::find(extra_end.begin(), extra_end.end(), t.text) != extra_end.end();
  }

  ExprPtr parse_expression(bool with_condexpr) {
    NestingGuard guard(*this, peek());
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    ExprPtr expr = parse_or();
    while (at_name("if")) {
      const int line = next().line;
      auto cond = make(ExprKind::kCond, line);
      cond->children.push_back(parse_or());
      cond->children.push_back(std::move(expr));
      if (at_name("else")) {
        next();
        cond->children.push_back(parse_condexpr());
      } else {
        cond->children.push_back(nullptr);
      }
      expr = finish(std::move(cond));
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (at_name("or")) {
      const int line = next().line;
      left = make_binary(ExprKind::kOr, line, std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (at_name("and")) {
      const int line = next().line;
      left = make_binary(ExprKind::kAnd, line, std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    if (at_name("not")) {
      NestingGuard guard(*this, peek());
      const int line = next().line;
      return make_unary(ExprKind::kNot, line, parse_not());
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = peek().line;
    ExprPtr first = parse_math1();
    auto e = make(ExprKind::kCompare, line);
    e->children.push_back(std::move(first));
    while (true) {
      static constexpr std::pair<std::string_view, CompareOp> kOps[] = {
          {"==", CompareOp::kEq}, {"!=", CompareOp::kNe}, {"<", CompareOp::kLt},
          {"<=", CompareOp::kLe}, {">", CompareOp::kGt},  {">=", CompareOp::kGe}};
      const auto* op = std::find_if(std::begin(kOps), std::end(kOps),
                                    [&](const auto& o) { return at_op(o.first); });
      if (op != std::end(kOps)) {
        next();
        e->compare_ops.push_back(op->second);
      } else if (at_name("in")) {
        next();
        e->compare_ops.push_back(CompareOp::kIn);
      } else if (at_name("not") && at_name("in", 1)) {
        next();
        next();
        e->compare_ops.push_back(CompareOp::kNotIn);
      } else {
        break;
      }
      e->children.push_back(parse_math1());
    }
    if (e->compare_ops.empty()) return std::move(e->children[0]);
    return finish(std::move(e));
  }

  using SubParser = ExprPtr (Parser::*)();
  ExprPtr parse_binary_chain(SubParser sub,
                             std::initializer_list<std::pair<std::string_view, BinaryOp>> ops) {
    ExprPtr left = (this->*sub)();
    while (true) {
      const auto* op =
          std::find_if(ops.begin(), ops.end(), [&](const auto& o) { return at_op(o.first); });
      if (op == ops.end()) return left;
      const int line = next().line;
      auto e = make_binary(ExprKind::kBinary, line, std::move(left), (this->*sub)());
      e->binary_op = op->second;
      left = std::move(e);
    }
  }
  ExprPtr parse_math1() {
    return parse_binary_chain(&Parser::parse_concat,
                              {{"+", BinaryOp::kAdd}, {"-", BinaryOp::kSub}});
  }
  ExprPtr parse_concat() {
    return parse_binary_chain(&Parser::parse_math2, {{"~", BinaryOp::kConcat}});
  }
  ExprPtr parse_math2() {
    return parse_binary_chain(&Parser::parse_pow, {{"*", BinaryOp::kMul},
                                                   {"/", BinaryOp::kDiv},
                                                   {"//", BinaryOp::kFloorDiv},
                                                   {"%", BinaryOp::kMod}});
  }
  ExprPtr parse_pow() {
    return parse_binary_chain(&Parser::parse_unary_with_filters, {{"**", BinaryOp::kPow}});
  }
  ExprPtr parse_unary_with_filters() { return parse_unary(true); }

  ExprPtr parse_unary(bool with_filter) {
    NestingGuard guard(*this, peek());
    ExprPtr node;
    if (at_op("-") || at_op("+")) {
      const Token& t = next();
      node =
          make_unary(t.text == "-" ? ExprKind::kNeg : ExprKind::kPos, t.line, parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary();
  ExprPtr parse_list_or_dict();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_filter(ExprPtr node);
  ExprPtr parse_test(ExprPtr node);
  void parse_call_args(Expr& call);
  std::string parse_dotted_name();

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int nesting_ = 0;
  int loop_depth_ = 0;  // enclosing for loops in the current macro/template body
};

ExprPtr Parser::parse_primary() {
  const Token& t = peek();
  auto constant = [&](Value v) {
    auto e = make(ExprKind::kConst, t.line);
    e->value = std::move(v);
    next();
    return finish(std::move(e));
  };
  switch (t.kind) {
    case TokenKind::kName:
      if (t.text == "true" || t.text == "True") return constant(Value::boolean(true));
      if (t.text == "false" || t.text == "False") return constant(Value::boolean(false));
      if (t.text == "none" || t.text == "None") return constant(Value::none());
      {
        auto e = make(ExprKind::kName, t.line);
        e->name = next().text;
        return finish(std::move(e));
      }
    case TokenKind::kString: {
      auto e = make(ExprKind::kConst, t.line);
      std::string s;
      while (peek().kind == TokenKind::kString) s += next().text;  // adjacent literals join
      e->value = Value::string(std::move(s));
      return finish(std::move(e));
    }
    case TokenKind::kInteger:
      return constant(Value::integer(t.int_value));
    case TokenKind::kFloat:
      return constant(Value::floating(t.float_value));
    case TokenKind::kOperator:
      if (t.text == "(") {
        next();
        ExprPtr e = parse_tuple(true, {}, true);
        expect_op(")");
        return e;
      }
      if (t.text == "[" || t.text == "{") return parse_list_or_dict();
      break;
    default:
      break;
  }
  fail(t, fmt::format("unexpected '{}'", describe(t)));
}

ExprPtr Parser::parse_list_or_dict() {
  const Token& open = next();
  const bool is_list = open.text == "[";
  auto e = make(is_list ? ExprKind::kList : ExprKind::kDict, open.line);
  const std::string_view close = is_list ? "]" : "}";
  while (!at_op(close)) {
    if (!e->children.empty()) expect_op(",");
    if (at_op(close)) break;
    e->children.push_back(parse_expression(true));
    if (!is_list) {
      expect_op(":");
      e->children.push_back(parse_expression(true));
    }
  }
  next();
  return finish(std::move(e));
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (at_op(".") || at_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (at_op("(")) {
      auto call = make(ExprKind::kCall, peek().line);
      call->children.push_back(std::move(node));
      parse_call_args(*call);
      node = finish(std::move(call));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
  const Token& t = next();
  if (t.text == ".") {
    const Token& attr = next();
    if (attr.kind == TokenKind::kName) {
      auto e = make_unary(ExprKind::kAttr, t.line, std::move(node));
      e->name = attr.text;
      return e;
    }
    if (attr.kind != TokenKind::kInteger) fail(attr, "expected a name or number after '.'");
    auto index = make(ExprKind::kConst, attr.line);
    index->value = Value::integer(attr.int_value);
    return make_binary(ExprKind::kItem, t.line, std::move(node), finish(std::move(index)));
  }
  // `[` index `]` or `[` start `:` stop `:` step `]`
  std::vector<ExprPtr> parts;
  if (at_op("]")) {  // x[]: Jinja subscripts with an empty tuple
    next();
    return make_binary(ExprKind::kItem, t.line, std::move(node),
                       finish(make(ExprKind::kTuple, t.line)));
  }
  if (!at_op(":")) {
    ExprPtr index = parse_expression(true);
    if (at_op(",")) {  // x[a, b]: a tuple key
      auto key = make(ExprKind::kTuple, t.line);
      key->children.push_back(std::move(index));
      while (at_op(",")) {
        next();
        if (at_op("]")) break;
        key->children.push_back(parse_expression(true));
      }
      index = finish(std::move(key));
    }
    if (!at_op(":")) {
      expect_op("]");
      return make_binary(ExprKind::kItem, t.line, std::move(node), std::move(index));
    }
    parts.push_back(std::move(index));
  } else {
    parts.push_back(nullptr);
  }
  next();  // the first ':'
  parts.push_back(at_op(":") || at_op("]") ? nullptr : parse_expression(true));
  if (at_op(":")) {
    next();
    parts.push_back(at_op("]") ? nullptr : parse_expression(true));
  } else {
    parts.push_back(nullptr);
  }
  expect_op("]");
  auto e = make(ExprKind::kSlice, t.line);
  e->children.push_back(std::move(node));
  for (auto& p : parts) e->children.push_back(std::move(p));
  return finish(std::move(e));
}

void Parser::parse_call_args(Expr& call) {
  expect_op("(");
  bool first = true;
  while (!at_op(")")) {
    if (!first) expect_op(",");
    first = false;
    if (at_op(")")) break;
    if (at_op("*") || at_op("**")) fail(peek(), "*args and **kwargs in calls are not supported");
    if (peek().kind == TokenKind::kName && at_op("=", 1)) {
      std::string key = next().text;
      next();
      call.kwargs.emplace_back(std::move(key), parse_expression(true));
    } else {
      if (!call.kwargs.empty()) fail(peek(), "positional argument follows keyword argument");
      call.children.push_back(parse_expression(true));
    }
  }
  next();
}

std::string Parser::parse_dotted_name() {
  std::string name = expect_name();
  while (at_op(".")) {
    next();
    name += '.';
    name += expect_name();
  }
  return name;
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (at_op("|")) {
      next();
      node = parse_filter(std::move(node));
    } else if (at_name("is")) {
      node = parse_test(std::move(node));
    } else if (at_op("(")) {
      auto call = make(ExprKind::kCall, peek().line);
      call->children.push_back(std::move(node));
      parse_call_args(*call);
      node = finish(std::move(call));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_filter(ExprPtr node) {
  auto e = make(ExprKind::kFilter, peek().line);
  e->children.push_back(std::move(node));
  e->name = parse_dotted_name();
  e->unknown = !is_known_filter(e->name);
  if (at_op("(")) parse_call_args(*e);
  return finish(std::move(e));
}

ExprPtr Parser::parse_test(ExprPtr node) {
  auto e = make(ExprKind::kTest, next().line);
  e->children.push_back(std::move(node));
  if (at_name("not")) {
    next();
    e->negated = true;
  }
  e->name = parse_dotted_name();
  e->unknown = !is_known_test(e->name);
  const Token& t = peek();
  if (at_op("(")) {
    parse_call_args(*e);
  } else if ((t.kind == TokenKind::kName || t.kind == TokenKind::kString ||
              t.kind == TokenKind::kInteger || t.kind == TokenKind::kFloat || at_op("[") ||
              at_op("{")) &&
             !at_name("else") && !at_name("or") && !at_name("and")) {
    if (at_name("is")) fail(t, "you cannot chain multiple tests with 'is'");
    e->children.push_back(parse_postfix(parse_primary()));
  }
  return finish(std::move(e));
}

}  // namespace

Program parse_template(std::string_view source) {
  Program program = Parser(tokenize(source)).parse();
  check_unknown_names(program.body);
  return program;
}

}  // namespace tandem::chat
