// The parsed form of a chat template: expression and statement nodes, immutable after parsing
// (a parsed template is shared by concurrent renders). Every node records its source line so
// runtime errors can name it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/value.h"

namespace tandem::chat {

enum class ExprKind : uint8_t {
  kConst,    // value
  kName,     // name
  kList,     // children = items
  kTuple,    // children = items
  kDict,     // children = key0, value0, key1, value1, ...
  kAttr,     // children[0].name
  kItem,     // children[0][children[1]]
  kSlice,    // children[0][children[1]:children[2]:children[3]] (absent parts are null)
  kCall,     // children[0](children[1..], kwargs)
  kFilter,   // children[0] | name(children[1..], kwargs); children[0] null in filter blocks
  kTest,     // children[0] is [not] name(children[1..], kwargs)
  kNeg,      // -children[0]
  kPos,      // +children[0]
  kNot,      // not children[0]
  kAnd,      // children[0] and children[1]
  kOr,       // children[0] or children[1]
  kBinary,   // children[0] <binary_op> children[1]
  kCompare,  // children[0] <compare_ops[0]> children[1] <compare_ops[1]> children[2] ...
  kCond,     // children[1] if children[0] else children[2] (children[2] null: undefined)
};

enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow, kConcat };
enum class CompareOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::kConst;
  int line = 0;
  int depth = 1;     // 1 + deepest child (bounded by the parser to keep evaluation recursion safe)
  Value value;       // kConst
  std::string name;  // kName, kAttr attribute, kFilter / kTest name
  BinaryOp binary_op = BinaryOp::kAdd;
  std::vector<CompareOp> compare_ops;
  bool negated = false;  // kTest: `is not`
  // kFilter / kTest: the name was unknown at parse time inside a conditional; evaluating the
  // node raises (Jinja defers these checks to run time).
  bool unknown = false;
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // kCall / kFilter / kTest
};

enum class StmtKind : uint8_t {
  kText,         // text
  kPrint,        // {{ expr }}
  kIf,           // branches (cond, body) ..., else_body
  kFor,          // for targets in expr [if cond]: body, else_body
  kSet,          // set targets = expr
  kSetAttr,      // set targets[0].text = expr (namespace attribute)
  kSetBlock,     // set targets[0] [| filters]: body
  kMacro,        // macro text(params): body
  kCallBlock,    // call(params) expr: body (the body becomes `caller`)
  kFilterBlock,  // filter filters: body
  kWith,         // with assignments: body
  kBreak,
  kContinue,
  kGeneration,  // transformers' {% generation %}: renders body
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null: no default
};

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  std::string text;                  // kText text, kMacro name, kSetAttr attribute
  std::vector<std::string> targets;  // kFor / kSet names, kSetAttr / kSetBlock target
  bool unpack = false;               // kFor / kSet: the target is a tuple of names
  ExprPtr expr;                      // kPrint, kFor iterable, kSet value, kCallBlock call
  ExprPtr cond;                      // kFor filter
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf
  Body body;
  Body else_body;
  std::vector<MacroParam> params;  // kMacro, kCallBlock
  // kMacro: the body reads `varargs` / `kwargs` / `caller` (extra arguments allowed then).
  bool uses_varargs = false;
  bool uses_kwargs = false;
  bool uses_caller = false;
  std::vector<ExprPtr> filters;  // kSetBlock / kFilterBlock: kFilter nodes with null input
  std::vector<std::pair<std::string, ExprPtr>> assignments;  // kWith
};

struct Program {
  Body body;
};

}  // namespace tandem::chat
