// Scheduler: running sequences first (preempting the newest when KV runs out), then waiting
// ones in arrival order under the token budget; update() applies a step's results.
#include "engine/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace tandem {

Scheduler::Scheduler(const SchedulerConfig& config, BlockManager& blocks, KvConnector* connector)
    : config_(config), blocks_(blocks), connector_(connector) {
  TANDEM_CHECK(config.max_num_seqs >= 1, "scheduler: max_num_seqs must be >= 1, got {}",
               config.max_num_seqs);
  TANDEM_CHECK(config.max_num_batched_tokens >= 1,
               "scheduler: max_num_batched_tokens must be >= 1, got {}",
               config.max_num_batched_tokens);
  TANDEM_CHECK(config.max_model_len >= 1, "scheduler: max_model_len must be >= 1, got {}",
               config.max_model_len);
}

int Scheduler::max_kv_tokens(const Sequence& seq) const {
  return seq.num_prompt_tokens + seq.max_tokens - 1;
}

std::optional<std::string> Scheduler::admission_error(const Sequence& seq) const {
  const std::string& id = seq.request_id;
  int prompt = seq.num_prompt_tokens, limit = config_.max_model_len;
  if (prompt == 0) return fmt::format("request {}: the prompt is empty", id);
  if (prompt >= limit) {
    return fmt::format(
        "request {}: the prompt has {} tokens, but max_model_len is {} (prompt "
        "and output must fit)",
        id, prompt, limit);
  }
  if (seq.max_tokens < 1) {
    return fmt::format("request {}: max_tokens must be at least 1, got {}", id, seq.max_tokens);
  }
  if (prompt + seq.max_tokens > limit) {
    return fmt::format(
        "request {}: prompt ({} tokens) + max_tokens ({}) = {} exceeds "
        "max_model_len ({})",
        id, prompt, seq.max_tokens, prompt + seq.max_tokens, limit);
  }
  int needed = blocks_.blocks_for_tokens(max_kv_tokens(seq));
  if (needed > blocks_.num_blocks()) {
    return fmt::format(
        "request {}: prompt ({} tokens) + max_tokens ({}) needs {} KV blocks of "
        "{} tokens, but the KV cache has only {} (raise the KV cache memory or "
        "lower max_tokens)",
        id, prompt, seq.max_tokens, needed, blocks_.block_size(), blocks_.num_blocks());
  }
  return std::nullopt;
}

void Scheduler::add(std::unique_ptr<Sequence> seq) {
  TANDEM_CHECK(seq != nullptr, "scheduler: null sequence");
  if (auto error = admission_error(*seq)) fail("{}", *error);
  // Nothing generated yet, but for a first token handed over by the prefiller.
  const int handed_over = seq->kv_transfer && seq->kv_transfer->first_token_id ? 1 : 0;
  TANDEM_CHECK(seq->status == SequenceStatus::kWaiting && seq->num_output_tokens() == handed_over,
               "scheduler: request {} added while {} with {} output tokens", seq->request_id,
               sequence_status_name(seq->status), seq->num_output_tokens());
  waiting_.push_back(std::move(seq));
}

std::unique_ptr<Sequence> Scheduler::abort(const std::string& request_id, FinishReason reason,
                                           std::string error) {
  auto matches = [&](const std::unique_ptr<Sequence>& s) { return s->request_id == request_id; };
  std::unique_ptr<Sequence> seq;
  if (auto it = std::find_if(waiting_.begin(), waiting_.end(), matches); it != waiting_.end()) {
    seq = std::move(*it);
    waiting_.erase(it);
  } else if (auto jt = std::find_if(running_.begin(), running_.end(), matches);
             jt != running_.end()) {
    seq = std::move(*jt);
    running_.erase(jt);
  } else {
    return nullptr;
  }
  blocks_.free(seq->blocks);
  seq->finish(reason, std::move(error));
  return seq;
}

std::vector<std::unique_ptr<Sequence>> Scheduler::abort_all(FinishReason reason,
                                                            const std::string& error) {
  std::vector<std::unique_ptr<Sequence>> out;
  for (auto& seq : running_) out.push_back(std::move(seq));
  for (auto& seq : waiting_) out.push_back(std::move(seq));
  running_.clear();
  waiting_.clear();
  for (auto& seq : out) {
    blocks_.free(seq->blocks);
    seq->finish(reason, error);
  }
  return out;
}

Sequence* Scheduler::preempt_newest() {
  std::unique_ptr<Sequence> seq = std::move(running_.back());
  running_.pop_back();
  blocks_.free(seq->blocks);
  seq->preempt();
  ++num_preemptions_;
  Sequence* raw = seq.get();
  waiting_.push_front(std::move(seq));
  return raw;
}

int Scheduler::schedule_running(SchedulerOutput& out, int budget) {
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Sequence* seq = running_[i].get();
    int n = std::min(seq->num_uncomputed_tokens(), budget);
    bool preempted_itself = false;
    while (!preempted_itself && !blocks_.allocate(seq->blocks, seq->num_computed_tokens + n)) {
      preempted_itself = preempt_newest() == seq;  // victims come from the unscheduled tail
      ++out.num_preempted;
    }
    if (preempted_itself) break;
    out.seqs.push_back({seq, n, seq->num_computed_tokens + n == seq->num_tokens()});
    out.num_tokens += n;
    budget -= n;
  }
  return budget;
}

void Scheduler::schedule_waiting(SchedulerOutput& out, int budget) {
  size_t i = 0;  // waiting_[i] is next; those before it wait for their KV transfer
  while (i < waiting_.size() && budget > 0 && num_running() < config_.max_num_seqs) {
    Sequence& seq = *waiting_[i];
    if (connector_ && !seq.was_scheduled() && connector_->transfer_arriving(seq)) {
      ++i;
      continue;
    }
    std::vector<int> cached = blocks_.match_prefix(seq.blocks, seq.token_ids, seq.cache_salt);
    int num_cached = int(cached.size()) * blocks_.block_size();
    const bool loads = connector_ != nullptr && !seq.was_scheduled();
    int num_loadable = loads ? connector_->num_loadable_tokens(seq, num_cached) : 0;
    int start = num_cached + num_loadable;  // tokens with KV once admitted
    int n = std::min(seq.num_tokens() - start, budget);
    if (!blocks_.allocate(seq.blocks, start + n, cached)) break;  // arrival order: wait
    if (blocks_.prefix_caching()) blocks_.record_lookup(seq.num_tokens(), num_cached);
    if (loads) {
      // Chunks may have gone away since the lookup (freed by an abort or the timeout): compute
      // from wherever the load stopped, within the blocks just allocated.
      start = num_cached + connector_->load(seq, num_cached, num_loadable);
      int allocated = int(seq.blocks.table.size()) * blocks_.block_size();
      n = std::min({seq.num_tokens() - start, budget, allocated - start});
    }
    seq.start_running(start);
    out.seqs.push_back({&seq, n, start + n == seq.num_tokens()});
    out.num_tokens += n;
    budget -= n;
    running_.push_back(std::move(waiting_[i]));
    waiting_.erase(waiting_.begin() + std::ptrdiff_t(i));
  }
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int budget = schedule_running(out, config_.max_num_batched_tokens);
  // After a preemption KV is short: admitting more would only preempt again (vLLM does this).
  if (out.num_preempted == 0) schedule_waiting(out, budget);
  return out;
}

std::vector<std::unique_ptr<Sequence>> Scheduler::update(const SchedulerOutput& out,
                                                         std::span<const StepToken> tokens) {
  TANDEM_CHECK(tokens.size() == out.seqs.size(), "scheduler: {} step results for {} sequences",
               tokens.size(), out.seqs.size());
  for (size_t i = 0; i < out.seqs.size(); ++i) {
    const ScheduledSeq& s = out.seqs[i];
    Sequence& seq = *s.seq;
    TANDEM_CHECK(seq.status == SequenceStatus::kRunning, "scheduler: request {} is {} in update",
                 seq.request_id, sequence_status_name(seq.status));
    seq.num_computed_tokens += s.num_new_tokens;
    blocks_.cache_full_blocks(seq.blocks, seq.token_ids, seq.num_computed_tokens, seq.cache_salt);
    if (!s.samples) {
      TANDEM_CHECK(tokens[i].token_id < 0, "scheduler: request {} sampled mid-prompt",
                   seq.request_id);
      continue;
    }
    TANDEM_CHECK(tokens[i].token_id >= 0, "scheduler: request {} got no token", seq.request_id);
    seq.append_token(tokens[i].token_id);
    const FinishReason finish = seq.within_max_tokens(tokens[i].finish);
    if (finish != FinishReason::kNone) seq.finish(finish);
  }
  std::vector<std::unique_ptr<Sequence>> finished;
  for (auto& seq : running_) {
    if (!seq->is_finished()) continue;
    blocks_.free(seq->blocks);
    finished.push_back(std::move(seq));
  }
  std::erase(running_, nullptr);
  return finished;
}

std::vector<std::string> Scheduler::ids_of_transfer(const std::string& transfer_id) const {
  std::vector<std::string> ids;
  auto check = [&](const std::unique_ptr<Sequence>& seq) {
    if (seq->kv_transfer && seq->kv_transfer->disagg_spec &&
        seq->kv_transfer->disagg_spec->req_id == transfer_id) {
      ids.push_back(seq->request_id);
    }
  };
  for (const auto& seq : waiting_) check(seq);
  for (const auto& seq : running_) check(seq);
  return ids;
}

}  // namespace tandem
