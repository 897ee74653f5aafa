// Sequence: one request inside the engine, and its state machine
//   WAITING -> RUNNING -> FINISHED, with RUNNING -> PREEMPTED (waiting again, KV freed,
//   recomputed when rescheduled) and WAITING/RUNNING -> FINISHED on abort or error.
// It carries the tokens (prompt then output), how many have KV in the cache, the block table,
// the sampling and stop state, the stream its outputs go to, and timestamps for metrics.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/request.h"
#include "kv/block_manager.h"

namespace tandem {

class SamplerState;
class StopChecker;

enum class SequenceStatus { kWaiting, kRunning, kPreempted, kFinished };

const char* sequence_status_name(SequenceStatus s);

struct Sequence {
  // max_model_len resolves an unset max_tokens to the rest of the context.
  Sequence(EngineRequest request, std::shared_ptr<RequestStream> stream, int max_model_len);
  ~Sequence();
  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;

  int num_tokens() const { return int(token_ids.size()); }
  int num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  std::span<const int32_t> output_ids() const {
    return std::span(token_ids).subspan(size_t(num_prompt_tokens));
  }
  // Tokens still to be computed (a prefill, its remaining chunks, or the decode token).
  int num_uncomputed_tokens() const { return num_tokens() - num_computed_tokens; }
  bool is_finished() const { return status == SequenceStatus::kFinished; }
  bool was_scheduled() const { return times.first_scheduled.has_value(); }

  // State transitions (each checks its source state and throws tandem::Error otherwise).
  void start_running(int num_cached_prefix_tokens);  // WAITING/PREEMPTED -> RUNNING
  void preempt();                                    // RUNNING -> PREEMPTED, recompute all
  void append_token(int32_t token_id);               // RUNNING: one generated token
  // WAITING, nothing generated yet: a token sampled elsewhere (the prefiller's first token)
  // becomes the first output; the model continues from it.
  void hand_over_first_token(int32_t token_id);
  void finish(FinishReason reason, std::string error_message = {});  // any -> FINISHED
  // A new token's finish reason (kNone: keep going), or kLength once max_tokens are out: the KV
  // bound checked at admission relies on max_tokens, so it holds whatever the stop checker says.
  FinishReason within_max_tokens(FinishReason token_finish) const;

  std::string request_id;
  std::vector<int32_t> token_ids;  // (num_prompt_tokens + num_output_tokens) prompt, then output
  int num_prompt_tokens = 0;
  int max_tokens = 0;  // params.max_tokens, or max_model_len - num_prompt_tokens when unset
  int num_computed_tokens = 0;  // leading tokens whose KV is in the cache
  int num_cached_tokens = 0;    // prompt tokens served from the prefix cache, first admission
  int num_preemptions = 0;
  std::string cache_salt;                       // the prefix cache's extra key
  std::optional<KvTransferParams> kv_transfer;  // the request's, for the KV connector
  SequenceStatus status = SequenceStatus::kWaiting;
  FinishReason finish_reason = FinishReason::kNone;
  std::string error;  // set with FinishReason::kError

  SeqBlocks blocks;  // block table + block hashes
  SamplingParams params;
  std::unique_ptr<SamplerState> sampler;  // set by the engine (null in scheduler tests)
  std::unique_ptr<StopChecker> stop;      // set by the engine (null in scheduler tests)
  std::shared_ptr<RequestStream> stream;  // null in scheduler tests
  RequestTimes times;
};

}  // namespace tandem
