// Normalizer steps, applied in the order tokenizer.json lists them.
#include "tokenizer/normalizer.h"

#include "core/error.h"

namespace tandem::tokenizer {

Normalizer Normalizer::from_json(const Json& node, const std::string& where) {
  Normalizer n;
  if (!node.is_null()) n.add_steps(node, where);
  return n;
}

void Normalizer::add_steps(const Json& node, const std::string& where) {
  const std::string type = type_of(node, where);
  if (type == "Sequence") {
    const Json& list = require_member(node, "normalizers", where);
    if (!list.is_array()) fail("{}.normalizers: expected an array", where);
    for (size_t i = 0; i < list.size(); ++i)
      add_steps(list[i], fmt::format("{}.normalizers[{}]", where, i));
  } else if (type == "Prepend") {
    steps_.push_back(Prepend{require_string(node, "prepend", where)});
  } else if (type == "Replace") {
    steps_.push_back(
        Replace{Pattern::from_json(require_member(node, "pattern", where), where + ".pattern"),
                require_string(node, "content", where)});
  } else {
    fail("{}: unsupported normalizer type \"{}\" (supported: Sequence, Prepend, Replace)", where,
         type);
  }
}

std::string Normalizer::normalize(std::string text) const {
  for (const Step& step : steps_) {
    if (const auto* p = std::get_if<Prepend>(&step)) {
      if (!text.empty()) text.insert(0, p->prefix);
    } else {
      const auto& r = std::get<Replace>(step);
      text = r.pattern.replace_all(text, r.content);
    }
  }
  return text;
}

}  // namespace tandem::tokenizer
