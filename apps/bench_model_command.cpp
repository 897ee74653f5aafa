// `tandem bench-model`: times the forward pass the way the PyTorch peer (../shared/bench/
// torch_peer.py) does — prefill of one long prompt, and decode steps of B sequences at a fixed
// context — on --device cuda (or cpu), and prints/writes one JSON object with the GPU name, the
// date and the median milliseconds. Random token ids; the KV cache is zeroed, not a real prefix,
// which costs the same. A timed step is what the engine's step does with greedy requests: the
// batch's upload, the forward pass and the next token of every sequence on the host (picked on
// the device where the backend can, else from the logits copied to the host).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "backend/model_backend.h"
#include "command_line.h"
#include "commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/utc_time.h"
#ifdef TANDEM_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace tandem::apps {
namespace {

constexpr int kBlockSize = 16;

struct BenchOptions {
  std::string model_dir;
  std::string device = "cuda";
  std::string json_path;
  std::vector<int> prefill_tokens{512, 2048, 7500};
  std::vector<std::string> decode_cases{"1x7500", "1x1024", "16x2048", "32x2048"};
  int iterations = 5;
  bool enforce_eager = false;
};

// B sequences whose next token sits at position ctx - new_tokens.. ctx - 1, blocks laid out
// sequence after sequence.
ForwardBatch make_batch(int batch, int ctx, int new_tokens, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  ForwardBatch b;
  b.query_start = {0};
  b.max_blocks_per_seq = (ctx + kBlockSize - 1) / kBlockSize;
  for (int s = 0; s < batch; ++s) {
    const int32_t first_block = s * b.max_blocks_per_seq;
    for (int pos = ctx - new_tokens; pos < ctx; ++pos) {
      b.token_ids.push_back(int32_t(rng() % uint32_t(vocab)));
      b.positions.push_back(pos);
      b.slot_mapping.push_back(int64_t(first_block + pos / kBlockSize) * kBlockSize +
                               pos % kBlockSize);
    }
    b.query_start.push_back(int32_t(b.token_ids.size()));
    b.context_lens.push_back(ctx);
    for (int i = 0; i < b.max_blocks_per_seq; ++i) b.block_tables.push_back(first_block + i);
    b.logits_indices.push_back(int32_t(b.token_ids.size()) - 1);
  }
  return b;
}

struct StepTimes {
  double wall_ms = 0.0;    // median host wall time of a step
  double device_ms = 0.0;  // median time between the step's first and last stream events
                           // (torch_peer.py's kind of figure); 0 where the backend has none
};

// Median milliseconds of `iterations` forward passes after two warm-ups.
StepTimes time_forward(ModelBackend& backend, const ForwardBatch& batch, int iterations) {
  const bool on_device = backend.has_device_sampler();
  std::vector<float> logits(
      on_device ? 0 : batch.logits_indices.size() * size_t(backend.config().vocab_size));
  const std::vector<DeviceDraw> greedy(batch.logits_indices.size());
  DevicePicks picks;
  const auto step = [&] {
    if (on_device) {
      backend.forward_sampled(batch, greedy, {}, logits.data(), picks);
    } else {
      backend.forward(batch, logits.data());
    }
  };
  for (int i = 0; i < 2; ++i) step();
  std::vector<double> ms, device_ms;
  for (int i = 0; i < iterations; ++i) {
    const double device_before = backend.device_seconds();
    const auto start = std::chrono::steady_clock::now();
    step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
    device_ms.push_back((backend.device_seconds() - device_before) * 1e3);
  }
  std::sort(ms.begin(), ms.end());
  std::sort(device_ms.begin(), device_ms.end());
  return {ms[ms.size() / 2], device_ms[device_ms.size() / 2]};
}

std::string device_name(const std::string& device) {
#ifdef TANDEM_WITH_CUDA
  cudaDeviceProp prop{};
  if (device == "cuda" && cudaGetDeviceProperties(&prop, 0) == cudaSuccess) return prop.name;
#endif
  return device;
}

std::pair<int, int> parse_case(const std::string& s) {
  int batch = 0, ctx = 0;
  char x = 0;
  TANDEM_CHECK(
      std::sscanf(s.c_str(), "%d%c%d", &batch, &x, &ctx) == 3 && x == 'x' && batch > 0 && ctx > 0,
      "--decode: '{}' is not BATCHxCONTEXT (e.g. 16x2048)", s);
  return {batch, ctx};
}

}  // namespace

int bench_model_command(int argc, char** argv) {
  CLI::App app{"Time prefill and decode steps of a model (as ../shared/bench/torch_peer.py).",
               argv[0]};
  BenchOptions o;
  app.add_option("--model", o.model_dir, "Hugging Face model directory")->required();
  app.add_option("--device", o.device, "cuda or cpu")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--json", o.json_path, "also write the JSON result to this file");
  app.add_option("--prefill", o.prefill_tokens, "prompt lengths to time")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--decode", o.decode_cases, "decode cases BATCHxCONTEXT");
  app.add_option("--iterations", o.iterations, "timed runs per figure (median)")
      ->check(CLI::Range(1, 1000));
  app.add_flag("--enforce-eager", o.enforce_eager, "CUDA: decode without CUDA graphs");
  if (std::optional<int> exit_code = parse_command_line(app, argc, argv)) return *exit_code;
  std::vector<std::pair<int, int>> decode;
  for (const std::string& c : o.decode_cases) decode.push_back(parse_case(c));

  ThreadPool pool(0);
  BackendOptions bo;
  bo.device = o.device == "cuda" ? BackendDevice::kCuda : BackendDevice::kCpu;
  bo.pool = &pool;
  bo.max_num_batched_tokens = *std::max_element(o.prefill_tokens.begin(), o.prefill_tokens.end());
  bo.execution = o.enforce_eager ? ExecutionMode::kEager : ExecutionMode::kGraphs;
  std::unique_ptr<ModelBackend> backend = load_model_backend(o.model_dir, bo);
  const ModelConfig& c = backend->config();
  int64_t blocks = 0;
  for (int t : o.prefill_tokens)
    blocks = std::max<int64_t>(blocks, (t + kBlockSize - 1) / kBlockSize);
  for (auto [b, ctx] : decode) {
    TANDEM_CHECK(ctx <= c.max_position_embeddings, "--decode: context {} exceeds the model's {}",
                 ctx, c.max_position_embeddings);
    blocks = std::max<int64_t>(blocks, int64_t(b) * ((ctx + kBlockSize - 1) / kBlockSize));
  }
  backend->allocate_kv_cache(blocks, kBlockSize);

  nlohmann::json result = {{"what", "tandem_bench_model"},
                           {"device", o.device},
                           {"gpu", device_name(o.device)},
                           {"date", utc_now_iso8601()},
                           {"model", o.model_dir},
                           {"cuda_graphs", o.device == "cuda" && !o.enforce_eager},
                           {"step", backend->has_device_sampler()
                                        ? "upload, forward, greedy ids picked on the device to host"
                                        : "upload, forward, f32 logits to host"},
                           {"prefill", nlohmann::json::array()},
                           {"decode", nlohmann::json::array()}};
  for (int t : o.prefill_tokens) {
    const StepTimes st = time_forward(*backend, make_batch(1, t, t, c.vocab_size, 1), o.iterations);
    const double ms = st.wall_ms;
    result["prefill"].push_back(
        {{"tokens", t}, {"ms", ms}, {"device_ms", st.device_ms}, {"tok_per_s", t / ms * 1e3}});
    std::fprintf(stderr, "prefill %d tokens: %.2f ms\n", t, ms);
  }
  for (auto [b, ctx] : decode) {
    const StepTimes st =
        time_forward(*backend, make_batch(b, ctx, 1, c.vocab_size, 2), 4 * o.iterations);
    const double ms = st.wall_ms;
    result["decode"].push_back({{"batch", b},
                                {"ctx", ctx},
                                {"ms", ms},
                                {"device_ms", st.device_ms},
                                {"tok_per_s", b / ms * 1e3}});
    std::fprintf(stderr, "decode batch %d ctx %d: %.3f ms/step\n", b, ctx, ms);
  }
  std::printf("%s\n", result.dump().c_str());
  if (!o.json_path.empty()) {
    std::ofstream f(o.json_path);
    TANDEM_CHECK(f && (f << result.dump(2) << "\n"), "--json: cannot write {}", o.json_path);
  }
  return 0;
}

}  // namespace tandem::apps
