// TemplateProcessing (single template) and the processors that leave ids unchanged.
#include "tokenizer/post_processor.h"

#include "core/error.h"

namespace tandem::tokenizer {
namespace {

// The ids a TemplateProcessing "special_tokens" entry stands for.
std::vector<int> special_token_ids(const Json& specials, const std::string& name,
                                   const std::string& where) {
  const std::string entry_where = fmt::format("{}.special_tokens[\"{}\"]", where, name);
  if (!specials.is_object() || !specials.contains(name))
    fail("{}: template uses special token \"{}\" that special_tokens does not define", where, name);
  const Json& ids = require_member(specials[name], "ids", entry_where);
  if (!ids.is_array()) fail("{}.ids: expected an array", entry_where);
  std::vector<int> out;
  for (const Json& id : ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      fail("{}.ids: invalid id {}", entry_where, id.dump());
    out.push_back(static_cast<int>(id.get<int64_t>()));
  }
  return out;
}

}  // namespace

PostProcessor PostProcessor::from_json(const Json& node, const std::string& where) {
  PostProcessor p;
  if (!node.is_null()) p.add(node, where);
  return p;
}

PostProcessor PostProcessor::around(std::vector<int> prefix, std::vector<int> suffix) {
  PostProcessor p;
  p.prefix_ = std::move(prefix);
  p.suffix_ = std::move(suffix);
  return p;
}

void PostProcessor::add(const Json& node, const std::string& where) {
  const std::string type = type_of(node, where);
  if (type == "Sequence") {
    const Json& list = require_member(node, "processors", where);
    if (!list.is_array()) fail("{}.processors: expected an array", where);
    for (size_t i = 0; i < list.size(); ++i)
      add(list[i], fmt::format("{}.processors[{}]", where, i));
  } else if (type == "ByteLevel") {
    // Only trims offsets; ids are unchanged.
  } else if (type == "TemplateProcessing") {
    add_template(node, where);
  } else {
    fail(
        "{}: unsupported post_processor type \"{}\" (supported: Sequence, ByteLevel, "
        "TemplateProcessing)",
        where, type);
  }
}

void PostProcessor::add_template(const Json& node, const std::string& where) {
  const Json& single = require_member(node, "single", where);
  if (!single.is_array()) fail("{}.single: expected an array", where);
  const Json& specials = require_member(node, "special_tokens", where);
  std::vector<int> before, after;
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string item = fmt::format("{}.single[{}]", where, i);
    const Json& piece = single[i];
    if (piece.is_object() && piece.contains("Sequence")) {
      const std::string id = require_string(piece["Sequence"], "id", item + ".Sequence");
      if (id != "A" || seen_sequence)
        fail("{}: the single template must contain sequence $A exactly once", item);
      seen_sequence = true;
    } else if (piece.is_object() && piece.contains("SpecialToken")) {
      const std::string name = require_string(piece["SpecialToken"], "id", item + ".SpecialToken");
      std::vector<int> ids = special_token_ids(specials, name, where);
      auto& side = seen_sequence ? after : before;
      side.insert(side.end(), ids.begin(), ids.end());
    } else {
      fail("{}: expected {{\"Sequence\": ...}} or {{\"SpecialToken\": ...}}, got {}", item,
           piece.dump());
    }
  }
  if (!seen_sequence) fail("{}.single: no sequence $A in the template", where);
  prefix_.insert(prefix_.begin(), before.begin(), before.end());
  suffix_.insert(suffix_.end(), after.begin(), after.end());
}

void PostProcessor::apply(std::vector<int>& ids) const {
  ids.insert(ids.begin(), prefix_.begin(), prefix_.end());
  ids.insert(ids.end(), suffix_.begin(), suffix_.end());
}

}  // namespace tandem::tokenizer
