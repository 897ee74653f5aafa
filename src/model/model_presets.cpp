// The preset configs, transcribed from the Hugging Face hub (meta-llama/Llama-3.1-8B-Instruct
// and meta-llama/Llama-3.2-1B-Instruct). head_dim is written out for both.
#include "model/model_presets.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>

#include "core/error.h"
#include "core/json_file.h"

namespace tandem {
namespace {

using nlohmann::json;

// What the two Llama 3 presets share; `preset_shape` fills in the sizes.
json llama3_config() {
  return json{
      {"architectures", {"LlamaForCausalLM"}},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"bos_token_id", 128000},
      {"eos_token_id", {128001, 128008, 128009}},
      {"hidden_act", "silu"},
      {"initializer_range", 0.02},
      {"max_position_embeddings", 131072},
      {"mlp_bias", false},
      {"model_type", "llama"},
      {"num_attention_heads", 32},
      {"num_key_value_heads", 8},
      {"pretraining_tp", 1},
      {"rms_norm_eps", 1e-5},
      {"rope_scaling",
       {{"factor", 8.0},
        {"high_freq_factor", 4.0},
        {"low_freq_factor", 1.0},
        {"original_max_position_embeddings", 8192},
        {"rope_type", "llama3"}}},
      {"rope_theta", 500000.0},
      {"use_cache", true},
      {"vocab_size", 128256},
  };
}

json llama3_generation_config() {
  return json{{"bos_token_id", 128000},
              {"do_sample", true},
              {"eos_token_id", {128001, 128008, 128009}},
              {"temperature", 0.6},
              {"top_p", 0.9}};
}

ModelPreset llama_3_1_8b() {
  json c = llama3_config();
  c["hidden_size"] = 4096;
  c["intermediate_size"] = 14336;
  c["num_hidden_layers"] = 32;
  c["head_dim"] = 128;
  c["tie_word_embeddings"] = false;
  return {"llama-3.1-8b", c, llama3_generation_config()};
}

ModelPreset llama_3_2_1b() {
  json c = llama3_config();
  c["hidden_size"] = 2048;
  c["intermediate_size"] = 8192;
  c["num_hidden_layers"] = 16;
  c["head_dim"] = 64;
  c["rope_scaling"]["factor"] = 32.0;
  c["tie_word_embeddings"] = true;
  return {"llama-3.2-1b", c, llama3_generation_config()};
}

}  // namespace

std::vector<std::string> model_preset_names() { return {"llama-3.1-8b", "llama-3.2-1b"}; }

bool is_model_preset(std::string_view name) {
  for (const auto& n : model_preset_names()) {
    if (n == name) return true;
  }
  return false;
}

ModelPreset model_preset(std::string_view name) {
  if (name == "llama-3.1-8b") return llama_3_1_8b();
  if (name == "llama-3.2-1b") return llama_3_2_1b();
  fail("unknown model preset '{}' (known: {})", name, fmt::join(model_preset_names(), ", "));
}

ModelPreset load_model_preset_or_file(std::string_view preset_or_path) {
  if (is_model_preset(preset_or_path)) return model_preset(preset_or_path);
  std::filesystem::path path(preset_or_path);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    fail("'{}' is neither a model preset ({}) nor an existing config file", preset_or_path,
         fmt::join(model_preset_names(), ", "));
  }
  nlohmann::json config = read_json_file(path);
  TANDEM_CHECK(config.is_object(), "{}: expected a JSON object, got {}", path.string(),
               config.type_name());
  return {path.string(), std::move(config), nlohmann::json()};
}

}  // namespace tandem
