// tokenizer_bench: Tokenizer::encode of one long prompt of "random" text, made as the serving
// benchmark's random dataset makes it (random ids in [0, vocab) from a fixed seed, decoded with
// special tokens skipped), timed on the CPU four ways: cold (a freshly loaded Tokenizer, empty word
// cache), steady (a Tokenizer whose word cache earlier prompts filled, encoding a new prompt: what
// a server sees), and warm (the same prompt again, every word cached); each with one thread and
// with the default thread count. Prints one JSON object of milliseconds (min, median, all).
// Usage: tokenizer_bench [--tokens N] [--seed S] [--reps R] [--cold-reps C] [--tokenizer DIR]
// DIR defaults to $TANDEM_SHARED/golden/models/llama3-tokenizer (TANDEM_SHARED: ../shared).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/seeded_rng.h"
#include "core/utc_time.h"
#include "tokenizer/tokenizer.h"

namespace {

struct Options {
  int tokens = 7500;
  uint64_t seed = 0;
  int reps = 20;      // warm and steady encodes per thread count
  int cold_reps = 5;  // fresh Tokenizer loads per thread count
  std::filesystem::path tokenizer_dir;
};

std::filesystem::path default_tokenizer_dir() {
  const char* env = std::getenv("TANDEM_SHARED");
  const std::filesystem::path shared = env && *env ? env : TANDEM_DEFAULT_SHARED_DIR;
  return shared / "golden" / "models" / "llama3-tokenizer";
}

Options parse(int argc, char** argv) {
  Options o;
  o.tokenizer_dir = default_tokenizer_dir();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--tokens")
      o.tokens = std::stoi(value);
    else if (flag == "--seed")
      o.seed = std::stoull(value);
    else if (flag == "--reps")
      o.reps = std::stoi(value);
    else if (flag == "--cold-reps")
      o.cold_reps = std::stoi(value);
    else if (flag == "--tokenizer")
      o.tokenizer_dir = value;
    else {
      std::fprintf(stderr, "tokenizer_bench: unknown flag %s\n", flag.c_str());
      std::exit(2);
    }
  }
  return o;
}

// `tokens` random ids of the whole vocabulary, decoded without the special ones.
std::string random_prompt(const tandem::Tokenizer& tok, int tokens, uint64_t seed) {
  tandem::bench::SeededRng rng(seed);
  std::vector<int> ids(static_cast<size_t>(tokens));
  for (int& id : ids) id = int(rng.below(uint64_t(tok.vocab_size())));
  return tok.decode(ids, /*skip_special_tokens=*/true);
}

double encode_ms(const tandem::Tokenizer& tok, const std::string& text, size_t threads,
                 size_t* num_ids = nullptr) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int> ids = tok.encode(text, /*add_special_tokens=*/false, threads);
  const auto stop = std::chrono::steady_clock::now();
  if (num_ids) *num_ids = ids.size();
  return std::chrono::duration<double, std::milli>(stop - start).count();
}

nlohmann::json summary(std::vector<double> ms) {
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  for (double& v : ms) v = std::round(v * 1000) / 1000;
  return {{"min", std::round(sorted.front() * 1000) / 1000},
          {"median", std::round(median * 1000) / 1000},
          {"all", ms}};
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const tandem::Tokenizer tok = tandem::Tokenizer::load(o.tokenizer_dir);
  const std::string prompt = random_prompt(tok, o.tokens, o.seed);
  size_t prompt_ids = 0;
  {
    const tandem::Tokenizer fresh = tandem::Tokenizer::load(o.tokenizer_dir);
    encode_ms(fresh, prompt, 1, &prompt_ids);
  }
  // Other prompts for the steady case, each new to the cache (the cache fills after ~2 of them).
  std::vector<std::string> others;
  for (int i = 0; i < o.reps + 4; ++i)
    others.push_back(random_prompt(tok, o.tokens, o.seed + 1 + i));

  const size_t default_threads = tandem::Tokenizer::kDefaultEncodeThreads;
  nlohmann::json results = nlohmann::json::object();
  for (const size_t threads : {size_t(1), default_threads}) {
    std::vector<double> cold, steady, warm;
    for (int r = 0; r < o.cold_reps; ++r) {
      const tandem::Tokenizer fresh = tandem::Tokenizer::load(o.tokenizer_dir);
      cold.push_back(encode_ms(fresh, prompt, threads));
    }
    {
      const tandem::Tokenizer server = tandem::Tokenizer::load(o.tokenizer_dir);
      for (size_t i = 0; i < 4; ++i) (void)encode_ms(server, others[i], threads);  // fill the cache
      for (int r = 0; r < o.reps; ++r) steady.push_back(encode_ms(server, others[4 + r], threads));
    }
    (void)encode_ms(tok, prompt, threads);
    for (int r = 0; r < o.reps; ++r) warm.push_back(encode_ms(tok, prompt, threads));
    const std::string key = threads == 1 ? "1_thread" : "default_threads";
    results[key] = {{"max_threads", threads},
                    {"cold_ms", summary(cold)},
                    {"steady_ms", summary(steady)},
                    {"warm_ms", summary(warm)}};
  }
  const nlohmann::json out = {{"what", "tokenizer_bench"},
                              {"date", tandem::utc_now_iso8601()},
                              {"tokenizer", o.tokenizer_dir.string()},
                              {"random_ids", o.tokens},
                              {"seed", o.seed},
                              {"prompt_bytes", prompt.size()},
                              {"prompt_tokens", prompt_ids},
                              {"hardware_concurrency", std::thread::hardware_concurrency()},
                              {"results", results}};
  std::printf("%s\n", out.dump(1).c_str());
  return 0;
}
