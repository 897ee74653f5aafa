// `tandem generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--max-tokens N]
//  [--temperature T] [--top-p P] [--top-k K] [--seed S] [--ignore-eos] [--logprobs K] [--json]`
// Streams the generated text to stdout, or prints one JSON object with --json.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "command_line.h"
#include "commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "engine/generator.h"

namespace tandem::apps {
namespace {

struct GenerateOptions {
  std::string model_dir;
  std::optional<std::string> prompt;
  std::optional<std::string> prompt_ids;
  int max_tokens = 64;
  float temperature = 1.0f, top_p = 1.0f;
  int top_k = 0;
  std::optional<int64_t> seed;
  std::optional<int> logprobs;
  bool ignore_eos = false, json = false, enforce_eager = false;
  int threads = 0;
  std::string device = "cpu";
};

std::vector<int32_t> parse_ids(const std::string& text, int vocab_size) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    TANDEM_CHECK(used == item.size() && !item.empty(), "--prompt-ids: '{}' is not a token id",
                 item);
    TANDEM_CHECK(v >= 0 && v < vocab_size,
                 "--prompt-ids: token id {} is outside the vocabulary "
                 "(0..{})",
                 v, vocab_size - 1);
    ids.push_back(int32_t(v));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

nlohmann::json to_json(const GenerationResult& r) {
  nlohmann::json logprobs = nlohmann::json::array();
  for (const auto& step : r.logprobs) {
    nlohmann::json pairs = nlohmann::json::array();
    for (const auto& t : step.top) pairs.push_back({t.token_id, t.logprob});
    logprobs.push_back(pairs);
  }
  return {
      {"prompt_ids", r.prompt_ids},
      {"generated_ids", r.generated_ids},
      {"text", r.text},
      {"logprobs", logprobs},
      {"finish_reason", std::string(finish_reason_name(r.finish))},
      {"timings", {{"prefill_ms", r.prefill_ms}, {"decode_tokens_per_s", r.decode_tokens_per_s}}}};
}

void add_options(CLI::App& app, GenerateOptions& o) {
  app.add_option("--model", o.model_dir, "Hugging Face model directory")->required();
  auto* prompt = app.add_option("--prompt", o.prompt, "prompt text (BOS added as the model does)");
  auto* ids = app.add_option("--prompt-ids", o.prompt_ids, "prompt token ids, e.g. 1,2,3");
  prompt->excludes(ids);
  app.add_option("--max-tokens", o.max_tokens, "tokens to generate at most")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("--temperature", o.temperature, "0 = greedy");
  app.add_option("--top-p", o.top_p, "nucleus sampling mass");
  app.add_option("--top-k", o.top_k, "keep the K most likely tokens (0 = off)");
  app.add_option("--seed", o.seed, "seed for reproducible sampling");
  app.add_flag("--ignore-eos", o.ignore_eos, "do not stop at the end-of-sequence token");
  app.add_option("--logprobs", o.logprobs, "top-K logprobs per step (with --json)")
      ->check(CLI::Range(0, kMaxLogprobs));
  app.add_flag("--json", o.json, "print one JSON object instead of the text");
  app.add_option("--threads", o.threads, "CPU threads (0 = all cores)")->check(CLI::Range(0, 1024));
  app.add_option("--device", o.device, "cpu, or cuda (needs a CUDA build and a GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_flag("--enforce-eager", o.enforce_eager, "CUDA: run decode steps without CUDA graphs");
}

}  // namespace

int generate_command(int argc, char** argv) {
  CLI::App app{"Generate text from a prompt.", argv[0]};
  GenerateOptions o;
  add_options(app, o);
  if (std::optional<int> exit_code = parse_command_line(app, argc, argv)) return *exit_code;
  TANDEM_CHECK(o.prompt || o.prompt_ids, "{}: one of --prompt or --prompt-ids is required",
               argv[0]);
  ThreadPool pool(o.threads);
  BackendOptions backend_options;
  backend_options.device = o.device == "cuda" ? BackendDevice::kCuda : BackendDevice::kCpu;
  backend_options.pool = &pool;
  backend_options.execution = o.enforce_eager ? ExecutionMode::kEager : ExecutionMode::kGraphs;
  std::unique_ptr<ModelBackend> backend = load_model_backend(o.model_dir, backend_options);
  ModelBackend& model = *backend;
  std::optional<Tokenizer> tokenizer;
  if (std::filesystem::exists(std::filesystem::path(o.model_dir) / "tokenizer.json"))
    tokenizer = Tokenizer::load(o.model_dir);
  TANDEM_CHECK(tokenizer || !o.prompt,
               "{}: --prompt needs a tokenizer.json in {} (use "
               "--prompt-ids)",
               argv[0], o.model_dir);
  std::vector<int32_t> prompt_ids;
  if (o.prompt) {
    auto ids = tokenizer->encode(*o.prompt);
    prompt_ids.assign(ids.begin(), ids.end());
  } else {
    prompt_ids = parse_ids(*o.prompt_ids, model.config().vocab_size);
  }
  SamplingParams params;
  params.max_tokens = o.max_tokens;
  params.temperature = o.temperature;
  params.top_p = o.top_p;
  params.top_k = o.top_k;
  params.seed = o.seed;
  params.ignore_eos = o.ignore_eos;
  params.logprobs = o.logprobs;
  params.validate();
  Generator generator(model, tokenizer ? &*tokenizer : nullptr, &pool);
  TextCallback print_text;
  if (!o.json)
    print_text = [](const std::string& t) {
      std::fwrite(t.data(), 1, t.size(), stdout);
      std::fflush(stdout);
    };
  GenerationResult result = generator.generate(prompt_ids, params, print_text);
  if (o.json) {
    std::printf("%s\n", to_json(result).dump().c_str());
  } else {
    std::printf("\n");
  }
  return 0;
}

}  // namespace tandem::apps
