// `tandem make-model --config PRESET|FILE --out DIR [--dtype] [--seed] [--tokenizer DIR]`:
// writes a random-weight Hugging Face model directory (config, generation config, safetensors,
// optionally a copied tokenizer) that Tandem and transformers both load. See random_model_writer.h.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <string>

#include "commands.h"
#include "core/error.h"
#include "core/logging.h"
#include "model/model_presets.h"
#include "model/random_model_writer.h"

namespace tandem::apps {
namespace {

struct MakeModelArgs {
  std::string config;
  std::string out;
  std::string dtype;  // empty: the config's
  uint64_t seed = 0;
  std::string tokenizer;
  int threads = 0;
};

DType parse_dtype(const std::string& name) {
  if (name == "bf16" || name == "bfloat16") return DType::kBF16;
  if (name == "f16" || name == "float16") return DType::kF16;
  if (name == "f32" || name == "float32") return DType::kF32;
  fail("--dtype: '{}' is not one of bf16, f16, f32", name);
}

std::string describe_files(const RandomModelSummary& s) {
  if (s.weight_files.size() == 1) return s.weight_files[0];
  return fmt::format("{} shards + model.safetensors.index.json", s.weight_files.size());
}

// 1235814400 -> "1.24B" (parameters); with bytes = true, 2471628800 -> "2.47 GB".
std::string human(double n, bool bytes) {
  const char* const units[] = {"", "K", "M", "G"};
  int i = 0;
  for (; n >= 1000 && i < 3; ++i) n /= 1000;
  const char* unit = !bytes && i == 3 ? "B" : units[i];
  return bytes ? fmt::format("{:.{}f} {}B", n, i ? 2 : 0, unit)
               : fmt::format("{:.{}f}{}", n, i ? 2 : 0, unit);
}

}  // namespace

int make_model_command(int argc, char** argv) {
  CLI::App app{"Write a random-weight Hugging Face model directory.", argv[0]};
  MakeModelArgs args;
  std::string presets = fmt::format("{}", fmt::join(model_preset_names(), ", "));
  app.add_option("--config", args.config, "a preset (" + presets + ") or a config.json-style file")
      ->required();
  app.add_option("--out", args.out, "the output directory (created if missing)")->required();
  app.add_option("--dtype", args.dtype, "bf16, f16 or f32 (default: the config's, else bf16)");
  app.add_option("--seed", args.seed, "random seed: the same seed writes identical files");
  app.add_option("--tokenizer", args.tokenizer,
                 "a directory whose tokenizer.json, tokenizer_config.json (and "
                 "special_tokens_map.json) are copied into the output");
  app.add_option("--threads", args.threads, "worker threads (default: all cores)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    fail("{} (see `tandem make-model --help`)", e.what());
  }

  RandomModelOptions options;
  if (!args.dtype.empty()) options.dtype = parse_dtype(args.dtype);
  options.seed = args.seed;
  options.num_threads = args.threads;
  if (!args.tokenizer.empty()) options.tokenizer_dir = args.tokenizer;
  ModelPreset preset = load_model_preset_or_file(args.config);

  auto start = std::chrono::steady_clock::now();
  RandomModelSummary s =
      write_random_model(args.out, preset.config, preset.generation_config, options, preset.name);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log_info("wrote {} ({} parameters, {}, {}, seed {}) to {} in {:.1f} s: {}; {}", preset.name,
           human(double(s.num_parameters), false), dtype_name(s.dtype),
           human(double(s.total_bytes), true), args.seed, args.out, seconds, describe_files(s),
           s.has_tokenizer ? "tokenizer copied from " + args.tokenizer
                           : std::string("no tokenizer (pass --tokenizer DIR to add one)"));
  return 0;
}

}  // namespace tandem::apps
