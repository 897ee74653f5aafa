// Generation: the choices of one OpenAI request running in the engine. Each choice is one
// engine request with its own incremental detokenizer and stop checker; poll() turns engine
// outputs into per-token deltas of final text (stop strings cut, possible stop prefixes held
// back), with decoded logprobs, and aborts a choice's engine request as soon as a stop string
// ends it. Destroying a Generation aborts whatever still runs (a client that went away).
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/request.h"
#include "engine/stop_checker.h"
#include "server/serving_context.h"
#include "tokenizer/incremental_detokenizer.h"

namespace tandem {

// One choice to generate.
struct ChoiceSpec {
  int index = 0;                    // the choice's index in the response
  int prompt_index = 0;             // which prompt it continues (usage counts each prompt once)
  std::vector<int32_t> prompt_ids;  // (prompt_len) what the engine sees
  SamplingParams params;            // validated, max_tokens set
  std::string echo_text;            // prepended to the choice's first delta (echo)
  std::optional<KvTransferParams> kv_transfer;  // the request's kv_transfer_params
};

// A generated token's log-probability, decoded for the response.
struct DecodedLogprob {
  int32_t token_id = 0;
  std::string token;  // the token's text
  float logprob = 0.0f;
  std::vector<std::pair<std::string, float>> top;  // (text, logprob), most likely first
};

// What one generated token (or the end of a choice) adds to a choice.
struct ChoiceDelta {
  int index = 0;
  std::string text;                           // text that became final (may be empty)
  int32_t token_id = -1;                      // the generated token it accounts for, if any
  std::optional<DecodedLogprob> logprob;      // when the request asked for logprobs
  FinishReason finish = FinishReason::kNone;  // set on the choice's last delta
  StopReason stop_reason;                     // what matched, when finish == kStop
};

struct GenerationOptions {
  bool skip_special_tokens = true;
  bool want_logprobs = false;
};

class Generation {
 public:
  // Submits every choice to the engine (request ids "<request_id>-<index>").
  Generation(const ServingContext& ctx, std::string request_id, std::vector<ChoiceSpec> choices,
             GenerationOptions options);
  ~Generation();  // aborts the choices still running
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  // Waits up to `timeout` for engine outputs and returns the deltas they make, in order
  // (empty on timeout). A choice's last delta has finish != kNone. Throws ApiError 500 when the
  // engine reports an error for a choice.
  std::vector<ChoiceDelta> poll(std::chrono::milliseconds timeout);
  [[nodiscard]] bool done() const { return num_running_ == 0; }
  // Aborts every running choice in the engine (their outputs are ignored from now on).
  void abort();

  [[nodiscard]] int prompt_tokens() const;      // each prompt counted once
  [[nodiscard]] int completion_tokens() const;  // over all choices
  [[nodiscard]] const std::string& request_id() const { return request_id_; }

 private:
  struct Choice;

  bool drain(Choice& choice, std::vector<ChoiceDelta>& deltas);
  void process(Choice& choice, const RequestOutput& output, std::vector<ChoiceDelta>& deltas);
  ChoiceDelta token_delta(Choice& choice, int32_t token, const TokenLogprob* logprob,
                          bool engine_finished);
  DecodedLogprob decode_logprob(const TokenLogprob& logprob) const;
  // Whether `token` will end the choice as an EOS / stop_token_ids stop whose text is dropped
  // (the stop checker's rule, decided before the token is detokenized).
  [[nodiscard]] bool ends_with_stop_token(const Choice& choice, int32_t token) const;
  void finish(Choice& choice, FinishReason reason);

  const ServingContext& ctx_;
  std::string request_id_;
  GenerationOptions options_;
  std::vector<std::unique_ptr<Choice>> choices_;
  int num_running_ = 0;
};

}  // namespace tandem
