// SamplingParams: how one sequence is sampled and when it stops, with vLLM's field names,
// defaults and ranges. The OpenAI/vLLM request fields map onto it in the server; `n` is not
// here (the server fans one request out into n sequences). validate() rejects out-of-range
// values with a tandem::Error naming the field and value, which the HTTP layer turns into a 400.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tandem {

// The largest `logprobs` a request may ask for (vLLM's default max_logprobs).
inline constexpr int kMaxLogprobs = 20;
// Temperatures below this are greedy, as in vLLM (_SAMPLING_EPS).
inline constexpr float kGreedyTemperature = 1e-5f;

struct SamplingParams {
  float temperature = 1.0f;     // >= 0; < kGreedyTemperature means greedy (argmax)
  float top_p = 1.0f;           // in (0, 1]; 1 = off
  int top_k = 0;                // 0 or -1 = off; a value >= the vocab size is also off
  float min_p = 0.0f;           // in [0, 1]; 0 = off
  std::optional<int64_t> seed;  // set: reproducible draws; unset: a global random source

  float presence_penalty = 0.0f;    // in [-2, 2]; subtracted once per distinct output token
  float frequency_penalty = 0.0f;   // in [-2, 2]; subtracted per occurrence in the output
  float repetition_penalty = 1.0f;  // > 0; 1 = off; prompt and output tokens

  std::optional<int> max_tokens;  // >= 1; unset: until the context is full
  int min_tokens = 0;             // >= 0, <= max_tokens; no EOS/stop before this many tokens
  bool ignore_eos = false;        // keep generating past the model's EOS tokens

  std::vector<std::string> stop;        // stop strings (non-empty), cut from the output text
  std::vector<int32_t> stop_token_ids;  // extra stop tokens (>= 0), besides EOS
  bool include_stop_str_in_output = false;

  std::optional<int> logprobs;  // 0..kMaxLogprobs top logprobs per step (+ the sampled one)

  // True when sampling is argmax (temperature below kGreedyTemperature).
  [[nodiscard]] bool is_greedy() const { return temperature < kGreedyTemperature; }

  // Throws tandem::Error("<field> must be ..., got <value>") for the first invalid field.
  void validate() const;
};

}  // namespace tandem
