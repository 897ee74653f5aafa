// The architecture of a Hugging Face Llama-family checkpoint, read from config.json,
// plus the defaults in generation_config.json. Supported model_type: llama, mistral, qwen2.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace tandem {

enum class RopeScalingType { kNone, kLinear, kLlama3 };

struct RopeConfig {
  double theta = 10000.0;
  RopeScalingType scaling = RopeScalingType::kNone;
  double factor = 1.0;                // linear and llama3
  double low_freq_factor = 1.0;       // llama3
  double high_freq_factor = 4.0;      // llama3
  int original_max_position = 8192;   // llama3
};

struct ModelConfig {
  std::string model_type;  // "llama", "mistral" or "qwen2"
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;  // == num_heads for MHA, 1 for MQA
  int head_dim = 0;      // config head_dim, else hidden_size / num_heads
  int max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // attention_bias (llama) or always-on q/k/v biases (qwen2)
  DType dtype = DType::kF32;  // torch_dtype / dtype of the checkpoint
  std::optional<int> bos_token_id;
  std::vector<int> eos_token_ids;  // from config.json, replaced by generation_config.json's
};

// Defaults from generation_config.json (all optional).
struct GenerationDefaults {
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int> top_k;
  std::optional<float> repetition_penalty;
  bool do_sample = true;
};

// Reads <dir>/config.json (required) and <dir>/generation_config.json (optional; its eos ids
// win). Throws tandem::Error naming the file and key for anything missing, malformed or
// unsupported.
ModelConfig load_model_config(const std::filesystem::path& dir,
                              GenerationDefaults* defaults = nullptr);

}  // namespace tandem
