// Random-weight Hugging Face checkpoints (llama, mistral, qwen2) for tests and benchmarks:
// config.json, generation_config.json, safetensors weights under HF names (sharded like
// save_pretrained past a size limit) and optionally a copied tokenizer. Weights come from a
// counter-based RNG (a hash of seed, tensor name and element index), so the same seed gives
// byte-identical files whatever the thread count; they are generated in parallel chunks and
// written straight into the files, never held in memory whole.
#pragma once
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace tandem {

// save_pretrained's default max_shard_size ("5GB").
constexpr uint64_t kDefaultMaxShardBytes = 5'000'000'000;

// The sizes that decide the weight shapes, read from a config.json-style object.
struct ModelShape {
  std::string model_type;  // "llama", "mistral" or "qwen2"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // num_key_value_heads, default num_heads
  int64_t head_dim = 0;      // head_dim, default hidden_size / num_heads
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // q/k/v_proj.bias: llama with attention_bias, always for qwen2
  bool o_bias = false;    // o_proj.bias: llama with attention_bias (as in transformers)
};

// Throws tandem::Error "<source>: ..." naming the key that is missing, mistyped or out of range.
[[nodiscard]] ModelShape parse_model_shape(const nlohmann::json& config, const std::string& source);

// The checkpoint dtype a config asks for (torch_dtype, else dtype); nullopt when it names none.
// Throws for a dtype other than bfloat16, float16 or float32.
[[nodiscard]] std::optional<DType> config_dtype(const nlohmann::json& config,
                                                const std::string& source);

enum class WeightInit { kNormal, kOnes };

struct RandomTensorSpec {
  std::string name;  // Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;
  WeightInit init = WeightInit::kNormal;
  float stddev = 0.0f;  // kNormal: N(0, stddev^2)
};

// Every tensor of the model in transformers' state_dict order. Projections and embeddings are
// N(0, 0.02^2), o_proj and down_proj further scaled by 1/sqrt(2 * num_layers) so the residual
// stream stays O(1) through all layers; biases N(0, 0.02^2); norm weights 1.
[[nodiscard]] std::vector<RandomTensorSpec> random_tensor_specs(const ModelShape& shape);

struct RandomModelOptions {
  std::optional<DType> dtype;  // default: the config's torch_dtype, else bf16
  uint64_t seed = 0;
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;  // tensor bytes per shard, as in HF
  int num_threads = 0;                               // 0 = all cores
  std::optional<std::filesystem::path> tokenizer_dir;
};

struct RandomModelSummary {
  int64_t num_parameters = 0;
  uint64_t total_bytes = 0;  // tensor data bytes, the index's total_size
  DType dtype = DType::kBF16;
  std::vector<std::string> weight_files;  // file names inside the output directory
  bool has_tokenizer = false;
};

// Writes the model into `out_dir` (created if missing). `config` is written as config.json with
// the defaults the shapes used made explicit and torch_dtype set; `generation_config` (null: the
// config's bos/eos ids) as generation_config.json. Weight, config and tokenizer files left in
// `out_dir` by an earlier run are replaced or removed. `source` names the config in errors.
RandomModelSummary write_random_model(const std::filesystem::path& out_dir,
                                      const nlohmann::json& config,
                                      const nlohmann::json& generation_config,
                                      const RandomModelOptions& options, const std::string& source);

}  // namespace tandem
