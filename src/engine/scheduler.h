// Scheduler: continuous batching in two questions, as TensorRT-LLM splits them: what fits in
// the KV cache (blocks for each sequence's next tokens, preempting the newest sequence when
// they run out) and what runs this step (running sequences first, then new ones, all under the
// token budget, long prompts chunked). schedule() decides a step; update() applies its results
// (computed tokens, sampled tokens, finishes). Plain C++: no model, no KV memory.
#pragma once
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/kv_connector.h"
#include "engine/sequence.h"
#include "kv/block_manager.h"

namespace tandem {

struct SchedulerConfig {
  int max_num_seqs = 256;             // sequences running at once
  int max_num_batched_tokens = 2048;  // tokens per step, over all sequences
  int max_model_len = 0;              // prompt + output tokens of one sequence
};

struct ScheduledSeq {
  Sequence* seq = nullptr;
  int num_new_tokens = 0;  // tokens computed this step: [num_computed_tokens, + this)
  bool samples = false;    // this step computes the sequence's last token: sample one more
};

// One step's work, in batch order (running sequences, then newly admitted ones). The pointers
// stay valid until update() for this output.
struct SchedulerOutput {
  std::vector<ScheduledSeq> seqs;
  int num_tokens = 0;     // sum of num_new_tokens
  int num_preempted = 0;  // sequences preempted while scheduling this step
  bool empty() const { return seqs.empty(); }
};

// What the model runner produced for one scheduled sequence.
struct StepToken {
  int32_t token_id = -1;  // the sampled token, -1 when the sequence did not sample
  FinishReason finish = FinishReason::kNone;  // the stop checker's verdict on it
};

class Scheduler {
 public:
  // `connector` (optional, must outlive the scheduler) loads transferred KV at admission.
  Scheduler(const SchedulerConfig& config, BlockManager& blocks, KvConnector* connector = nullptr);

  // Why `seq` can never run (empty prompt, prompt + max_tokens over max_model_len, or more KV
  // blocks than the whole cache); nullopt when it can.
  [[nodiscard]] std::optional<std::string> admission_error(const Sequence& seq) const;
  // Queues a new sequence (WAITING). Throws tandem::Error when admission_error() is set.
  void add(std::unique_ptr<Sequence> seq);
  // Removes a waiting or running sequence, frees its blocks and finishes it with `reason`
  // (kAbort, or kError with a message when its step failed). Returns it (for its final
  // output), or nullptr for an unknown or finished id.
  std::unique_ptr<Sequence> abort(const std::string& request_id,
                                  FinishReason reason = FinishReason::kAbort,
                                  std::string error = {});
  // The ids of the live sequences whose kv_transfer_params name transfer `transfer_id`.
  std::vector<std::string> ids_of_transfer(const std::string& transfer_id) const;
  // Finishes every live sequence with `reason` and returns them (engine shutdown or failure).
  std::vector<std::unique_ptr<Sequence>> abort_all(FinishReason reason = FinishReason::kAbort,
                                                   const std::string& error = {});

  SchedulerOutput schedule();
  // Applies a step: tokens[i] belongs to out.seqs[i]. Advances computed tokens, caches full
  // blocks, appends sampled tokens, and removes finished sequences (blocks freed), which it
  // returns so the caller can emit their final outputs.
  std::vector<std::unique_ptr<Sequence>> update(const SchedulerOutput& out,
                                                std::span<const StepToken> tokens);

  bool has_work() const { return !waiting_.empty() || !running_.empty(); }
  int num_waiting() const { return int(waiting_.size()); }
  int num_running() const { return int(running_.size()); }
  uint64_t num_preemptions() const { return num_preemptions_; }
  const SchedulerConfig& config() const { return config_; }

 private:
  // Gives running sequences their next tokens; returns the remaining token budget.
  int schedule_running(SchedulerOutput& out, int budget);
  // Admits waiting sequences in arrival order while budget, max_num_seqs and KV allow. At a
  // sequence's first admission the connector may load KV past the prefix-cache hit (one whose
  // transfer is still arriving is passed over until it has); a preempted sequence recomputes.
  void schedule_waiting(SchedulerOutput& out, int budget);
  // Preempts the newest running sequence; returns it (still owned by waiting_).
  Sequence* preempt_newest();
  // Longest KV length the sequence may reach: its prompt and every output token but the last.
  int max_kv_tokens(const Sequence& seq) const;

  SchedulerConfig config_;
  BlockManager& blocks_;
  KvConnector* connector_;                          // null: no disaggregated prefill
  std::deque<std::unique_ptr<Sequence>> waiting_;   // arrival order, preempted ones in front
  std::vector<std::unique_ptr<Sequence>> running_;  // admission order (newest last)
  uint64_t num_preemptions_ = 0;
};

}  // namespace tandem
