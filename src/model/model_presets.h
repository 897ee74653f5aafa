// Named model shapes for `tandem make-model --config NAME`: the config.json and
// generation_config.json of real Hugging Face checkpoints (Llama 3.1 8B Instruct,
// Llama 3.2 1B Instruct), so that random-weight stand-ins have exactly their architecture.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace tandem {

struct ModelPreset {
  std::string name;
  nlohmann::json config;             // config.json, without torch_dtype (set by the writer)
  nlohmann::json generation_config;  // generation_config.json
};

// "llama-3.1-8b", "llama-3.2-1b".
[[nodiscard]] std::vector<std::string> model_preset_names();
[[nodiscard]] bool is_model_preset(std::string_view name);
// Throws tandem::Error "unknown model preset '<name>' (known: ...)".
[[nodiscard]] ModelPreset model_preset(std::string_view name);

// A preset name, or else the path of a config.json-style file (then `name` is the path and
// `generation_config` is null). Throws tandem::Error when it is neither, or naming the file
// when it cannot be read or is not a JSON object.
[[nodiscard]] ModelPreset load_model_preset_or_file(std::string_view preset_or_path);

}  // namespace tandem
