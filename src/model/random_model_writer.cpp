// write_random_model and its parts: config parsing (ModelShape), the tensor list in HF order,
// the counter-based normal generator, shard planning and the parallel streaming write.
#include "model/random_model_writer.h"

#include <fmt/format.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <regex>

#include "core/error.h"
#include "core/logging.h"
#include "core/thread_pool.h"
#include "model/safetensors_writer.h"

namespace tandem {
namespace {

using nlohmann::json;

constexpr int64_t kMaxDim = int64_t{1} << 20;  // hidden, intermediate, heads, head_dim
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxLayers = 4096;
constexpr float kInitStddev = 0.02f;
constexpr uint64_t kChunkElements = uint64_t{1} << 20;  // elements generated per task

// ---------------------------------------------------------------------------------------------
// Config parsing

// config[key] as an integer in [1, max]; `fallback` when the key is absent or null.
int64_t get_int(const json& config, const char* key, const std::string& source, int64_t max,
                std::optional<int64_t> fallback = std::nullopt) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) {
    TANDEM_CHECK(fallback.has_value(), "{}: missing key '{}'", source, key);
    return *fallback;
  }
  TANDEM_CHECK(it->is_number_integer(), "{}: key '{}' must be an integer, got {}", source, key,
               it->dump());
  bool in_range = it->is_number_unsigned()
                      ? it->get<uint64_t>() >= 1 && it->get<uint64_t>() <= uint64_t(max)
                      : it->get<int64_t>() >= 1 && it->get<int64_t>() <= max;
  TANDEM_CHECK(in_range, "{}: key '{}' = {} is out of range [1, {}]", source, key, it->dump(), max);
  return it->get<int64_t>();
}

bool get_bool(const json& config, const char* key, const std::string& source) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return false;
  TANDEM_CHECK(it->is_boolean(), "{}: key '{}' must be true or false, got {}", source, key,
               it->dump());
  return it->get<bool>();
}

std::string get_model_type(const json& config, const std::string& source) {
  auto it = config.find("model_type");
  TANDEM_CHECK(it != config.end(), "{}: missing key 'model_type'", source);
  bool ok = it->is_string() && (*it == "llama" || *it == "mistral" || *it == "qwen2");
  TANDEM_CHECK(ok, "{}: key 'model_type' = {} is not supported (llama, mistral, qwen2)", source,
               it->dump());
  return it->get<std::string>();
}

bool has_value(const json& config, const char* key) {
  return config.contains(key) && !config[key].is_null();
}

std::string_view hf_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "float32";
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Counter-based random numbers: element i of a tensor is a pure function of (seed, name, i).

constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;  // the SplitMix64 increment

// The SplitMix64 finalizer: a bijective 64-bit mix.
inline uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t tensor_key(uint64_t seed, const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a of the name
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ULL;
  return mix64(mix64(seed + kGamma) ^ h);
}

constexpr size_t kPairBlock = 256;  // normal pairs generated per inner step

// ln(x) for normal floats x in (0, 1]: the Cephes logf polynomial, branch-free (error < 1e-6).
inline float log_unit(float x) {
  uint32_t bits = std::bit_cast<uint32_t>(x);
  int e = int(bits >> 23) - 126;
  float m = std::bit_cast<float>((bits & 0x7fffffu) | 0x3f000000u);  // x = m * 2^e, m in [0.5, 1)
  int small = m < 0.707106781186547524f;
  e -= small;
  m = m * float(1 + small) - 1.0f;  // now x = (1 + m) * 2^e, 1 + m in [sqrt(1/2), sqrt(2))
  float z = m * m;
  float y = 7.0376836292e-2f;
  for (float c : {-1.1514610310e-1f, 1.1676998740e-1f, -1.2420140846e-1f, 1.4249322787e-1f,
                  -1.6668057665e-1f, 2.0000714765e-1f, -2.4999993993e-1f, 3.3333331174e-1f}) {
    y = y * m + c;
  }
  y = y * z * m - 2.12194440e-4f * float(e) - 0.5f * z;
  return m + y + 0.693359375f * float(e);
}

// z[2j], z[2j+1] = two independent standard normals from the hash h[j], j < n <= kPairBlock
// (Box-Muller: radius from 24 bits, angle from 2 quadrant bits + 22 bits mapped to
// [-pi/4, pi/4) where the Cephes sin/cos polynomials are accurate). The loops are branch-free
// so the compiler vectorizes them; sqrt gets a loop of its own (its errno path is a branch).
void normal_pairs(const uint64_t* h, size_t n, float* z) {
  float r[kPairBlock];  // [n] radius
  for (size_t j = 0; j < n; ++j)
    r[j] = -2.0f * log_unit(float(uint32_t(h[j] >> 40) + 1u) * 0x1p-24f);
  for (size_t j = 0; j < n; ++j) r[j] = std::sqrt(r[j]);
  for (size_t j = 0; j < n; ++j) {
    uint32_t q = uint32_t(h[j] >> 22) & 3u;  // quadrant
    float t = (float(uint32_t(h[j]) & 0x3fffffu) * 0x1p-22f - 0.5f) * 1.57079632679f;
    float t2 = t * t;
    float s = ((-1.9515295891e-4f * t2 + 8.3321608736e-3f) * t2 - 1.6666654611e-1f) * t2 * t + t;
    float c = ((2.443315711809948e-5f * t2 - 1.388731625493765e-3f) * t2 + 4.166664568298827e-2f) *
                  t2 * t2 -
              0.5f * t2 + 1.0f;
    // Rotate (c, s) by q quarter turns with bit operations: swap for odd q, then negate.
    uint32_t swap = 0u - (q & 1u);
    uint32_t cb = std::bit_cast<uint32_t>(c), sb = std::bit_cast<uint32_t>(s);
    uint32_t ab = (cb & ~swap) | (sb & swap), bb = (sb & ~swap) | (cb & swap);
    ab ^= ((q ^ (q >> 1)) & 1u) << 31;  // negate for q = 1, 2
    bb ^= (q >> 1) << 31;               // negate for q = 2, 3
    z[2 * j] = r[j] * std::bit_cast<float>(ab);
    z[2 * j + 1] = r[j] * std::bit_cast<float>(bb);
  }
}

// out[0 .. end-begin) = elements [begin, end) of `spec` (stream `key`), converted by `convert`.
// Element i is z[i % 2] of pair i / 2, whatever the range, so chunking never changes a value.
template <typename T, typename Convert>
void fill_typed(const RandomTensorSpec& spec, uint64_t key, uint64_t begin, uint64_t end, T* out,
                Convert convert) {
  if (spec.init == WeightInit::kOnes) {
    std::fill(out, out + (end - begin), convert(1.0f));
    return;
  }
  uint64_t h[kPairBlock];   // [n] hashes of pairs p0 .. p0 + n
  float z[2 * kPairBlock];  // [2n] their normals
  for (uint64_t p0 = begin / 2; 2 * p0 < end; p0 += kPairBlock) {
    size_t n = size_t(std::min<uint64_t>(kPairBlock, (end + 1) / 2 - p0));
    for (size_t j = 0; j < n; ++j) h[j] = mix64(key + (p0 + j + 1) * kGamma);
    normal_pairs(h, n, z);
    uint64_t first = std::max(begin, 2 * p0), last = std::min(end, 2 * (p0 + n));
    for (uint64_t i = first; i < last; ++i) out[i - begin] = convert(z[i - 2 * p0] * spec.stddev);
  }
}

// `out` holds (end - begin) elements of `dtype`.
void fill_chunk(const RandomTensorSpec& spec, uint64_t key, DType dtype, uint64_t begin,
                uint64_t end, void* out) {
  switch (dtype) {
    case DType::kF32:
      return fill_typed(spec, key, begin, end, static_cast<float*>(out), [](float v) { return v; });
    case DType::kF16:
      return fill_typed(spec, key, begin, end, static_cast<uint16_t*>(out), f32_to_f16);
    case DType::kBF16:
      return fill_typed(spec, key, begin, end, static_cast<uint16_t*>(out), f32_to_bf16);
  }
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Files

struct ShardPlan {
  std::string file_name;
  std::vector<const RandomTensorSpec*> specs;  // in state_dict order
};

// save_pretrained's rule (huggingface_hub's split_state_dict_into_shards): a tensor larger than
// the limit gets a shard of its own at once; otherwise a new shard starts when the next tensor
// would push the current one over the limit.
std::vector<ShardPlan> plan_shards(const std::vector<RandomTensorSpec>& specs, DType dtype,
                                   uint64_t max_bytes) {
  std::vector<ShardPlan> shards;
  ShardPlan current;
  uint64_t current_bytes = 0;
  for (const auto& spec : specs) {
    uint64_t bytes = uint64_t(numel(spec.shape)) * dtype_size(dtype);
    if (bytes > max_bytes) {
      shards.push_back(ShardPlan{"", {&spec}});
      continue;
    }
    if (current_bytes + bytes > max_bytes) {
      shards.push_back(std::move(current));
      current = ShardPlan{};
      current_bytes = 0;
    }
    current.specs.push_back(&spec);
    current_bytes += bytes;
  }
  if (!current.specs.empty()) shards.push_back(std::move(current));
  for (size_t i = 0; i < shards.size(); ++i) {
    shards[i].file_name = shards.size() == 1 ? "model.safetensors"
                                             : fmt::format("model-{:05d}-of-{:05d}.safetensors",
                                                           i + 1, shards.size());
  }
  return shards;
}

struct Chunk {
  size_t tensor;        // index in the shard
  uint64_t begin, end;  // element range
};

// Generates every tensor of `shard` in parallel chunks and streams them into `path`.
void write_shard(const std::filesystem::path& path, const ShardPlan& shard, DType dtype,
                 uint64_t seed, ThreadPool& pool) {
  std::vector<TensorDecl> decls;
  std::vector<uint64_t> keys;
  std::vector<Chunk> chunks;
  for (size_t t = 0; t < shard.specs.size(); ++t) {
    const RandomTensorSpec& spec = *shard.specs[t];
    decls.push_back(TensorDecl{spec.name, dtype, spec.shape});
    keys.push_back(tensor_key(seed, spec.name));
    uint64_t n = uint64_t(numel(spec.shape));
    for (uint64_t b = 0; b < n; b += kChunkElements) {
      chunks.push_back(Chunk{t, b, std::min(n, b + kChunkElements)});
    }
  }
  SafetensorsWriter writer(path, decls);
  const size_t esize = dtype_size(dtype);
  std::mutex error_mutex;
  std::exception_ptr error;
  pool.parallel_for(chunks.size(), [&](size_t first, size_t last) {
    std::vector<uint8_t> buffer(kChunkElements * esize);  // one chunk in the output dtype
    try {
      for (size_t c = first; c < last; ++c) {
        const Chunk& ch = chunks[c];
        fill_chunk(*shard.specs[ch.tensor], keys[ch.tensor], dtype, ch.begin, ch.end,
                   buffer.data());
        writer.write(ch.tensor, ch.begin * esize, buffer.data(), (ch.end - ch.begin) * esize);
      }
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
  writer.finish();
}

void write_text_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail("{}: cannot create file: {}", path.string(), std::strerror(errno));
  out << text;
  out.close();
  if (!out) fail("{}: write failed", path.string());
}

void write_json(const std::filesystem::path& path, const json& value) {
  write_text_file(path, value.dump(2) + "\n");
}

const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json",
                                       "special_tokens_map.json"};

void check_tokenizer_dir(const std::filesystem::path& dir) {
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
    TANDEM_CHECK(std::filesystem::is_regular_file(dir / name),
                 "{}: no {} (--tokenizer needs tokenizer.json and tokenizer_config.json)",
                 dir.string(), name);
  }
}

void copy_tokenizer(const std::filesystem::path& dir, const std::filesystem::path& out_dir) {
  for (const char* name : kTokenizerFiles) {
    if (!std::filesystem::exists(dir / name)) continue;  // special_tokens_map.json is optional
    std::error_code ec;
    std::filesystem::copy_file(dir / name, out_dir / name,
                               std::filesystem::copy_options::overwrite_existing, ec);
    if (ec)
      fail("{}: cannot copy to {}: {}", (dir / name).string(), out_dir.string(), ec.message());
  }
}

bool same_dir(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::error_code ec;
  return std::filesystem::equivalent(a, b, ec);
}

// Creates `out_dir` and removes the files an earlier run may have left: weights, configs and
// (unless the tokenizer is read from `out_dir` itself) tokenizer files.
void prepare_out_dir(const std::filesystem::path& out_dir, bool keep_tokenizer) {
  std::error_code ec;
  TANDEM_CHECK(!std::filesystem::exists(out_dir, ec) || std::filesystem::is_directory(out_dir, ec),
               "{}: exists and is not a directory", out_dir.string());
  std::filesystem::create_directories(out_dir, ec);
  if (ec) fail("{}: cannot create output directory: {}", out_dir.string(), ec.message());
  static const std::regex kOwned(
      R"(model\.safetensors|model\.safetensors\.index\.json|model-\d{5}-of-\d{5}\.safetensors|)"
      R"(config\.json|generation_config\.json)");
  static const std::regex kTokenizer(
      R"(tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json)");
  std::vector<std::filesystem::path> stale;
  for (const auto& entry : std::filesystem::directory_iterator(out_dir, ec)) {
    std::string name = entry.path().filename().string();
    bool owned =
        std::regex_match(name, kOwned) || (!keep_tokenizer && std::regex_match(name, kTokenizer));
    if (owned && entry.is_regular_file()) stale.push_back(entry.path());
  }
  for (const auto& path : stale) {
    std::filesystem::remove(path, ec);
    if (ec) fail("{}: cannot remove the file of an earlier model: {}", path.string(), ec.message());
  }
  size_t removed = stale.size();
  if (removed > 0) log_info("{}: replaced {} files of an earlier model", out_dir.string(), removed);
}

void check_free_space(const std::filesystem::path& out_dir, uint64_t needed) {
  struct statvfs fs;
  if (::statvfs(out_dir.c_str(), &fs) != 0) return;  // unknown: let the writes tell
  uint64_t available = uint64_t(fs.f_bavail) * fs.f_frsize;
  TANDEM_CHECK(available >= needed, "{}: the model needs {:.2f} GB but only {:.2f} GB are free",
               out_dir.string(), needed / 1e9, available / 1e9);
}

// config.json as written: the input with the defaults the shapes used made explicit.
json output_config(json config, const ModelShape& shape, DType dtype) {
  static const std::map<std::string, std::string> kArchitectures = {
      {"llama", "LlamaForCausalLM"},
      {"mistral", "MistralForCausalLM"},
      {"qwen2", "Qwen2ForCausalLM"}};
  if (!has_value(config, "architectures")) {
    config["architectures"] = {kArchitectures.at(shape.model_type)};
  }
  if (!has_value(config, "num_key_value_heads")) config["num_key_value_heads"] = shape.num_kv_heads;
  if (!has_value(config, "head_dim")) config["head_dim"] = shape.head_dim;
  if (!has_value(config, "tie_word_embeddings")) {
    config["tie_word_embeddings"] = shape.tie_word_embeddings;
  }
  config["torch_dtype"] = hf_dtype_name(dtype);  // transformers 4 reads this key,
  config["dtype"] = hf_dtype_name(dtype);        // transformers 5 this one
  return config;
}

// What GenerationConfig.from_model_config keeps of a config without generation_config.json.
json default_generation_config(const json& config) {
  json g = {{"_from_model_config", true}};
  for (const char* key : {"bos_token_id", "eos_token_id", "pad_token_id"}) {
    if (has_value(config, key)) g[key] = config[key];
  }
  return g;
}

json shard_index(const std::vector<ShardPlan>& shards, int64_t num_parameters,
                 uint64_t total_bytes) {
  json weight_map = json::object();
  for (const auto& shard : shards) {
    for (const auto* spec : shard.specs) weight_map[spec->name] = shard.file_name;
  }
  return json{{"metadata", {{"total_parameters", num_parameters}, {"total_size", total_bytes}}},
              {"weight_map", weight_map}};
}

}  // namespace

ModelShape parse_model_shape(const json& config, const std::string& source) {
  TANDEM_CHECK(config.is_object(), "{}: expected a JSON object, got {}", source,
               config.type_name());
  ModelShape s;
  s.model_type = get_model_type(config, source);
  s.vocab_size = get_int(config, "vocab_size", source, kMaxVocab);
  s.hidden_size = get_int(config, "hidden_size", source, kMaxDim);
  s.intermediate_size = get_int(config, "intermediate_size", source, kMaxDim);
  s.num_layers = get_int(config, "num_hidden_layers", source, kMaxLayers);
  s.num_heads = get_int(config, "num_attention_heads", source, kMaxDim);
  s.num_kv_heads = get_int(config, "num_key_value_heads", source, kMaxDim, s.num_heads);
  TANDEM_CHECK(s.num_heads % s.num_kv_heads == 0,
               "{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", source,
               s.num_heads, s.num_kv_heads);
  TANDEM_CHECK(has_value(config, "head_dim") || s.hidden_size % s.num_heads == 0,
               "{}: missing key 'head_dim', and hidden_size {} is not a multiple of "
               "num_attention_heads {}",
               source, s.hidden_size, s.num_heads);
  s.head_dim = get_int(config, "head_dim", source, kMaxDim, s.hidden_size / s.num_heads);
  s.tie_word_embeddings = get_bool(config, "tie_word_embeddings", source);
  TANDEM_CHECK(!get_bool(config, "mlp_bias", source), "{}: key 'mlp_bias' = true is not supported",
               source);
  bool attention_bias = get_bool(config, "attention_bias", source);
  s.qkv_bias = s.model_type == "qwen2" || (s.model_type == "llama" && attention_bias);
  s.o_bias = s.model_type == "llama" && attention_bias;
  return s;
}

std::optional<DType> config_dtype(const json& config, const std::string& source) {
  for (const char* key : {"torch_dtype", "dtype"}) {
    if (!has_value(config, key)) continue;
    const json& v = config[key];
    if (v == "bfloat16") return DType::kBF16;
    if (v == "float16" || v == "half") return DType::kF16;
    if (v == "float32" || v == "float") return DType::kF32;
    fail("{}: key '{}' = {} is not supported (bfloat16, float16, float32)", source, key, v.dump());
  }
  return std::nullopt;
}

std::vector<RandomTensorSpec> random_tensor_specs(const ModelShape& s) {
  const float out_stddev = kInitStddev / std::sqrt(2.0f * float(s.num_layers));
  const int64_t q_dim = s.num_heads * s.head_dim, kv_dim = s.num_kv_heads * s.head_dim;
  std::vector<RandomTensorSpec> specs;
  auto linear = [&](const std::string& name, int64_t out, int64_t in, float stddev, bool bias) {
    specs.push_back({name + ".weight", {out, in}, WeightInit::kNormal, stddev});
    if (bias) specs.push_back({name + ".bias", {out}, WeightInit::kNormal, kInitStddev});
  };
  auto norm = [&](const std::string& name) {
    specs.push_back({name + ".weight", {s.hidden_size}, WeightInit::kOnes, 0.0f});
  };
  specs.push_back({"model.embed_tokens.weight",
                   {s.vocab_size, s.hidden_size},
                   WeightInit::kNormal,
                   kInitStddev});
  for (int64_t l = 0; l < s.num_layers; ++l) {
    std::string p = fmt::format("model.layers.{}.", l);
    linear(p + "self_attn.q_proj", q_dim, s.hidden_size, kInitStddev, s.qkv_bias);
    linear(p + "self_attn.k_proj", kv_dim, s.hidden_size, kInitStddev, s.qkv_bias);
    linear(p + "self_attn.v_proj", kv_dim, s.hidden_size, kInitStddev, s.qkv_bias);
    linear(p + "self_attn.o_proj", s.hidden_size, q_dim, out_stddev, s.o_bias);
    linear(p + "mlp.gate_proj", s.intermediate_size, s.hidden_size, kInitStddev, false);
    linear(p + "mlp.up_proj", s.intermediate_size, s.hidden_size, kInitStddev, false);
    linear(p + "mlp.down_proj", s.hidden_size, s.intermediate_size, out_stddev, false);
    norm(p + "input_layernorm");
    norm(p + "post_attention_layernorm");
  }
  norm("model.norm");
  if (!s.tie_word_embeddings) linear("lm_head", s.vocab_size, s.hidden_size, kInitStddev, false);
  return specs;
}

RandomModelSummary write_random_model(const std::filesystem::path& out_dir, const json& config,
                                      const json& generation_config,
                                      const RandomModelOptions& options,
                                      const std::string& source) {
  ModelShape shape = parse_model_shape(config, source);
  RandomModelSummary summary;
  summary.dtype =
      options.dtype ? *options.dtype : config_dtype(config, source).value_or(DType::kBF16);
  std::vector<RandomTensorSpec> specs = random_tensor_specs(shape);
  for (const auto& spec : specs) summary.num_parameters += numel(spec.shape);
  summary.total_bytes = uint64_t(summary.num_parameters) * dtype_size(summary.dtype);
  const auto& tokenizer_dir = options.tokenizer_dir;
  if (tokenizer_dir) check_tokenizer_dir(*tokenizer_dir);
  bool tokenizer_in_place = tokenizer_dir && same_dir(*tokenizer_dir, out_dir);

  prepare_out_dir(out_dir, tokenizer_in_place);
  check_free_space(out_dir, summary.total_bytes);
  std::vector<ShardPlan> shards = plan_shards(specs, summary.dtype, options.max_shard_bytes);
  ThreadPool pool(options.num_threads);
  for (const auto& shard : shards) {
    write_shard(out_dir / shard.file_name, shard, summary.dtype, options.seed, pool);
    summary.weight_files.push_back(shard.file_name);
    if (shards.size() > 1) log_info("wrote {}", (out_dir / shard.file_name).string());
  }
  if (shards.size() > 1) {
    write_json(out_dir / "model.safetensors.index.json",
               shard_index(shards, summary.num_parameters, summary.total_bytes));
  }
  if (tokenizer_dir && !tokenizer_in_place) copy_tokenizer(*tokenizer_dir, out_dir);
  summary.has_tokenizer = tokenizer_dir.has_value();
  write_json(out_dir / "generation_config.json",
             generation_config.is_null() ? default_generation_config(config) : generation_config);
  write_json(out_dir / "config.json", output_config(config, shape, summary.dtype));
  return summary;
}

}  // namespace tandem
