// Sequence: construction from an EngineRequest and the checked state transitions.
#include "engine/sequence.h"

#include "core/error.h"
#include "engine/sampler.h"
#include "engine/stop_checker.h"

namespace tandem {

const char* sequence_status_name(SequenceStatus s) {
  switch (s) {
    case SequenceStatus::kWaiting:
      return "waiting";
    case SequenceStatus::kRunning:
      return "running";
    case SequenceStatus::kPreempted:
      return "preempted";
    case SequenceStatus::kFinished:
      return "finished";
  }
  return "?";
}

Sequence::Sequence(EngineRequest request, std::shared_ptr<RequestStream> stream_, int max_model_len)
    : request_id(std::move(request.request_id)),
      token_ids(std::move(request.prompt_ids)),
      num_prompt_tokens(int(token_ids.size())),
      max_tokens(request.params.max_tokens.value_or(max_model_len - num_prompt_tokens)),
      cache_salt(std::move(request.cache_salt)),
      kv_transfer(std::move(request.kv_transfer)),
      params(std::move(request.params)),
      stream(std::move(stream_)) {
  times.arrival = request.arrival;
}

Sequence::~Sequence() = default;

void Sequence::start_running(int num_cached_prefix_tokens) {
  TANDEM_CHECK(status == SequenceStatus::kWaiting || status == SequenceStatus::kPreempted,
               "sequence {}: cannot start running while {}", request_id,
               sequence_status_name(status));
  TANDEM_CHECK(num_cached_prefix_tokens >= 0 && num_cached_prefix_tokens < num_tokens(),
               "sequence {}: {} cached tokens out of {}", request_id, num_cached_prefix_tokens,
               num_tokens());
  if (!was_scheduled()) {
    times.first_scheduled = std::chrono::steady_clock::now();
    num_cached_tokens = num_cached_prefix_tokens;
  }
  num_computed_tokens = num_cached_prefix_tokens;
  status = SequenceStatus::kRunning;
}

void Sequence::preempt() {
  TANDEM_CHECK(status == SequenceStatus::kRunning, "sequence {}: cannot preempt while {}",
               request_id, sequence_status_name(status));
  num_computed_tokens = 0;
  ++num_preemptions;
  status = SequenceStatus::kPreempted;
}

void Sequence::append_token(int32_t token_id) {
  TANDEM_CHECK(status == SequenceStatus::kRunning && num_computed_tokens == num_tokens(),
               "sequence {}: token appended while {} with {} of {} tokens computed", request_id,
               sequence_status_name(status), num_computed_tokens, num_tokens());
  token_ids.push_back(token_id);
  auto now = std::chrono::steady_clock::now();
  if (!times.first_token) times.first_token = now;
  times.last_token = now;
}

void Sequence::hand_over_first_token(int32_t token_id) {
  TANDEM_CHECK(status == SequenceStatus::kWaiting && !was_scheduled() && num_output_tokens() == 0,
               "sequence {}: first token handed over while {} with {} output tokens", request_id,
               sequence_status_name(status), num_output_tokens());
  token_ids.push_back(token_id);
  times.first_token = times.last_token = std::chrono::steady_clock::now();
}

FinishReason Sequence::within_max_tokens(FinishReason token_finish) const {
  if (token_finish == FinishReason::kNone && num_output_tokens() >= max_tokens) {
    return FinishReason::kLength;
  }
  return token_finish;
}

void Sequence::finish(FinishReason reason, std::string error_message) {
  TANDEM_CHECK(reason != FinishReason::kNone, "sequence {}: finished without a reason", request_id);
  if (is_finished()) return;
  status = SequenceStatus::kFinished;
  finish_reason = reason;
  error = std::move(error_message);
}

}  // namespace tandem
