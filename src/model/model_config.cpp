#include "model/model_config.h"

#include <cmath>

#include "core/error.h"
#include "core/json_file.h"
#include "core/logging.h"

namespace tandem {

namespace {

using nlohmann::json;

// Typed field look-ups that name the file and key on failure.
struct ConfigReader {
  const json& j;
  std::string file;

  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }

  int positive_int(const char* key) const {
    TANDEM_CHECK(has(key), "{}: missing required key '{}'", file, key);
    const json& v = j[key];
    TANDEM_CHECK(v.is_number_integer() && v.get<int64_t>() > 0 && v.get<int64_t>() <= (1 << 30),
                 "{}: key '{}' must be a positive integer, got {}", file, key, v.dump());
    return v.get<int>();
  }
  double number(const json& v, const char* key) const {
    TANDEM_CHECK(v.is_number() && std::isfinite(v.get<double>()),
                 "{}: key '{}' must be a finite number, got {}", file, key, v.dump());
    return v.get<double>();
  }
  double number_or(const char* key, double fallback) const {
    return has(key) ? number(j[key], key) : fallback;
  }
  bool bool_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    TANDEM_CHECK(j[key].is_boolean(), "{}: key '{}' must be a boolean, got {}", file, key,
                 j[key].dump());
    return j[key].get<bool>();
  }
  // eos_token_id may be an int or a list of ints.
  std::vector<int> id_list(const char* key) const {
    std::vector<int> ids;
    if (!has(key)) return ids;
    const json& v = j[key];
    auto take = [&](const json& x) {
      TANDEM_CHECK(x.is_number_integer() && x.get<int64_t>() >= 0,
                   "{}: key '{}' must hold non-negative integer token ids, got {}", file, key,
                   v.dump());
      ids.push_back(x.get<int>());
    };
    if (v.is_array()) {
      for (const auto& x : v) take(x);
    } else {
      take(v);
    }
    return ids;
  }
};

DType parse_dtype(const ConfigReader& r) {
  const char* key = r.has("torch_dtype") ? "torch_dtype" : "dtype";
  if (!r.has(key)) return DType::kF32;
  const json& v = r.j[key];
  TANDEM_CHECK(v.is_string(), "{}: key '{}' must be a string, got {}", r.file, key, v.dump());
  std::string s = v.get<std::string>();
  if (s == "float32") return DType::kF32;
  if (s == "float16") return DType::kF16;
  if (s == "bfloat16") return DType::kBF16;
  fail("{}: key '{}' has unsupported dtype '{}' (float32, float16, bfloat16)", r.file, key, s);
}

RopeConfig parse_rope(const ConfigReader& r) {
  RopeConfig rope;
  rope.theta = r.number_or("rope_theta", 10000.0);
  TANDEM_CHECK(rope.theta > 0, "{}: key 'rope_theta' must be positive", r.file);
  if (!r.has("rope_scaling")) return rope;
  const json& s = r.j["rope_scaling"];
  TANDEM_CHECK(s.is_object(), "{}: key 'rope_scaling' must be an object or null", r.file);
  std::string type = s.value("rope_type", s.value("type", std::string("default")));
  ConfigReader sr{s, r.file + " rope_scaling"};
  if (type == "default") return rope;
  rope.factor = sr.number_or("factor", 1.0);
  TANDEM_CHECK(rope.factor >= 1.0, "{}: key 'rope_scaling.factor' must be >= 1, got {}", r.file,
               rope.factor);
  if (type == "linear") {
    rope.scaling = RopeScalingType::kLinear;
  } else if (type == "llama3") {
    rope.scaling = RopeScalingType::kLlama3;
    rope.low_freq_factor = sr.number_or("low_freq_factor", 1.0);
    rope.high_freq_factor = sr.number_or("high_freq_factor", 4.0);
    rope.original_max_position = sr.positive_int("original_max_position_embeddings");
    TANDEM_CHECK(rope.high_freq_factor > rope.low_freq_factor && rope.low_freq_factor > 0,
                 "{}: rope_scaling needs 0 < low_freq_factor < high_freq_factor", r.file);
  } else {
    fail("{}: key 'rope_scaling.rope_type' = '{}' is not supported (linear, llama3)", r.file,
         type);
  }
  return rope;
}

void check_architecture(const ConfigReader& r, ModelConfig& c) {
  TANDEM_CHECK(r.has("model_type") && r.j["model_type"].is_string(),
               "{}: missing required key 'model_type'", r.file);
  c.model_type = r.j["model_type"].get<std::string>();
  TANDEM_CHECK(c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2",
               "{}: unsupported architecture: model_type '{}' (supported: llama, mistral, qwen2)",
               r.file, c.model_type);
  if (r.has("hidden_act")) {
    TANDEM_CHECK(r.j["hidden_act"] == "silu", "{}: key 'hidden_act' = {} is not supported (silu)",
                 r.file, r.j["hidden_act"].dump());
  }
  TANDEM_CHECK(!r.bool_or("mlp_bias", false), "{}: key 'mlp_bias' = true is not supported",
               r.file);
}

}  // namespace

ModelConfig load_model_config(const std::filesystem::path& dir, GenerationDefaults* defaults) {
  TANDEM_CHECK(std::filesystem::is_directory(dir), "{}: model directory does not exist",
               dir.string());
  auto path = dir / "config.json";
  TANDEM_CHECK(std::filesystem::exists(path), "{}: missing config.json", dir.string());
  json j = read_json_file(path);
  TANDEM_CHECK(j.is_object(), "{}: must hold a JSON object", path.string());
  ConfigReader r{j, path.string()};
  ModelConfig c;
  check_architecture(r, c);
  c.vocab_size = r.positive_int("vocab_size");
  c.hidden_size = r.positive_int("hidden_size");
  c.intermediate_size = r.positive_int("intermediate_size");
  c.num_layers = r.positive_int("num_hidden_layers");
  c.num_heads = r.positive_int("num_attention_heads");
  c.num_kv_heads = r.has("num_key_value_heads") ? r.positive_int("num_key_value_heads") : c.num_heads;
  TANDEM_CHECK(c.num_heads % c.num_kv_heads == 0,
               "{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
               r.file, c.num_heads, c.num_kv_heads);
  if (r.has("head_dim")) {
    c.head_dim = r.positive_int("head_dim");
  } else {
    TANDEM_CHECK(c.hidden_size % c.num_heads == 0,
                 "{}: hidden_size ({}) is not divisible by num_attention_heads ({})", r.file,
                 c.hidden_size, c.num_heads);
    c.head_dim = c.hidden_size / c.num_heads;
  }
  TANDEM_CHECK(c.head_dim % 2 == 0, "{}: head_dim must be even, got {}", r.file, c.head_dim);
  c.max_position_embeddings =
      r.has("max_position_embeddings") ? r.positive_int("max_position_embeddings") : 4096;
  // Sliding-window attention (Mistral v0.1) is not implemented: within the window it equals
  // full attention, so the usable context is capped at the window instead.
  bool sliding = c.model_type == "mistral" || r.bool_or("use_sliding_window", false);
  if (sliding && r.has("sliding_window")) {
    int window = r.positive_int("sliding_window");
    if (window < c.max_position_embeddings) {
      log_warning("{}: sliding_window {} < max_position_embeddings {}: context capped at {}",
                  r.file, window, c.max_position_embeddings, window);
      c.max_position_embeddings = window;
    }
  }
  c.rms_norm_eps = float(r.number_or("rms_norm_eps", 1e-6));
  TANDEM_CHECK(c.rms_norm_eps > 0, "{}: key 'rms_norm_eps' must be positive", r.file);
  c.rope = parse_rope(r);
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", false);
  c.qkv_bias = c.model_type == "qwen2" || r.bool_or("attention_bias", false);
  c.dtype = parse_dtype(r);
  if (auto bos = r.id_list("bos_token_id"); !bos.empty()) c.bos_token_id = bos.front();
  c.eos_token_ids = r.id_list("eos_token_id");

  auto gen_path = dir / "generation_config.json";
  GenerationDefaults gen;
  if (std::filesystem::exists(gen_path)) {
    json g = read_json_file(gen_path);
    TANDEM_CHECK(g.is_object(), "{}: must hold a JSON object", gen_path.string());
    ConfigReader gr{g, gen_path.string()};
    if (auto eos = gr.id_list("eos_token_id"); !eos.empty()) c.eos_token_ids = eos;
    if (gr.has("temperature")) gen.temperature = float(gr.number(g["temperature"], "temperature"));
    if (gr.has("top_p")) gen.top_p = float(gr.number(g["top_p"], "top_p"));
    if (gr.has("top_k")) gen.top_k = int(gr.number(g["top_k"], "top_k"));
    if (gr.has("repetition_penalty"))
      gen.repetition_penalty = float(gr.number(g["repetition_penalty"], "repetition_penalty"));
    gen.do_sample = gr.bool_or("do_sample", true);
  }
  for (int id : c.eos_token_ids)
    TANDEM_CHECK(id < c.vocab_size, "{}: eos token id {} is outside the vocabulary ({})",
                 path.string(), id, c.vocab_size);
  if (defaults) *defaults = gen;
  return c;
}

}  // namespace tandem
