// What crosses between the HTTP threads and the engine thread: a request going in (token ids
// and sampling params, never JSON) and the per-step outputs coming back through a RequestStream.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/sampling_params.h"
#include "transfer/kv_transfer_params.h"

namespace tandem {

enum class FinishReason { kNone, kStop, kLength, kAbort, kError };

// "stop", "length", "abort", "error" (OpenAI's finish_reason spelling); "" for kNone.
const char* finish_reason_name(FinishReason r);

struct EngineRequest {
  std::string request_id;           // unique while the request lives
  std::vector<int32_t> prompt_ids;  // (prompt_len) already tokenized, BOS included
  SamplingParams params;            // validated by the caller
  std::string cache_salt;           // optional: isolates this request's prefix-cache entries
  std::optional<KvTransferParams> kv_transfer;  // disaggregated prefill: which transfer
  std::chrono::steady_clock::time_point arrival = std::chrono::steady_clock::now();
};

// One step's result for one request: the tokens generated in this step (usually one).
struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  // (token, logprob), most likely first
};

// When a request passed each milestone (steady clock), for the server's latency metrics:
// queue time, time to first token, inter-token latency, end-to-end latency.
struct RequestTimes {
  using TimePoint = std::chrono::steady_clock::time_point;
  TimePoint arrival;
  std::optional<TimePoint> first_scheduled;  // first admitted to a batch
  std::optional<TimePoint> first_token;
  std::optional<TimePoint> last_token;
};

struct RequestOutput {
  std::vector<int32_t> new_token_ids;
  std::vector<TokenLogprob> logprobs;  // parallel to new_token_ids when logprobs were asked
  FinishReason finish = FinishReason::kNone;
  std::string error;  // set when finish == kError
  int num_prompt_tokens = 0;
  int num_cached_tokens = 0;          // prompt tokens served from the prefix cache
  std::optional<RequestTimes> times;  // set on the final output (finish != kNone)
};

// A thread-safe queue of outputs for one request: the engine pushes, one HTTP thread pops.
class RequestStream {
 public:
  void push(RequestOutput out);
  // Waits up to `timeout` for the next output; nullopt on timeout.
  std::optional<RequestOutput> pop(std::chrono::milliseconds timeout);
  bool finished() const;  // a final output (finish != kNone) has been pushed

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<RequestOutput> queue_;
  bool finished_ = false;
};

}  // namespace tandem
