// FakeEngine: a scripted EngineClient for handler tests. Each request "generates" the tokens of
// a fixed script on an engine thread, one token per step for every live request, honouring
// max_tokens, EOS / stop_token_ids (unless ignore_eos) and aborts, and producing logprobs when
// asked. It records what it was sent and aborted, and reports KV blocks for live requests.
#pragma once
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "server/engine_client.h"

namespace tandem::test {

class FakeEngine final : public EngineClient {
 public:
  // script: the tokens every request generates, in order (repeated if it runs out).
  FakeEngine(std::vector<int32_t> script, std::vector<int32_t> eos_ids, int block_size = 16,
             int kv_blocks_total = 1000,
             std::chrono::microseconds step = std::chrono::microseconds(200))
      : script_(std::move(script)),
        eos_ids_(std::move(eos_ids)),
        block_size_(block_size),
        kv_blocks_total_(kv_blocks_total),
        step_(step),
        thread_([this] { loop(); }) {}
  ~FakeEngine() override {
    stopping_ = true;
    thread_.join();
  }

  void add_request(EngineRequest request, std::shared_ptr<RequestStream> stream) override {
    std::lock_guard lock(mutex_);
    received_.push_back(request);
    std::string id = request.request_id;
    live_[id] = Live{std::move(request), std::move(stream), 0};
  }
  void abort_request(const std::string& request_id) override {
    std::lock_guard lock(mutex_);
    aborted_.insert(request_id);
    auto it = live_.find(request_id);
    if (it == live_.end()) return;
    RequestOutput out;
    out.finish = FinishReason::kAbort;
    it->second.stream->push(std::move(out));
    live_.erase(it);
  }
  void abort_transfer(const std::string& transfer_id) override {
    std::lock_guard lock(mutex_);
    aborted_transfers_.push_back(transfer_id);
  }
  EngineStats stats() const override {
    std::lock_guard lock(mutex_);
    EngineStats s;
    s.kv_blocks_total = kv_blocks_total_;
    for (const auto& [id, live] : live_) {
      int tokens = int(live.request.prompt_ids.size()) + live.generated;
      s.kv_blocks_used += (tokens + block_size_ - 1) / block_size_;
      ++s.num_running;
    }
    return s;
  }

  std::vector<EngineRequest> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }
  std::set<std::string> aborted() const {
    std::lock_guard lock(mutex_);
    return aborted_;
  }
  std::vector<std::string> aborted_transfers() const {
    std::lock_guard lock(mutex_);
    return aborted_transfers_;
  }
  size_t num_live() const {
    std::lock_guard lock(mutex_);
    return live_.size();
  }

 private:
  struct Live {
    EngineRequest request;
    std::shared_ptr<RequestStream> stream;
    int generated = 0;
  };

  void loop() {
    while (!stopping_) {
      {
        std::lock_guard lock(mutex_);
        for (auto it = live_.begin(); it != live_.end();) {
          it = step(it->second) ? live_.erase(it) : std::next(it);
        }
      }
      std::this_thread::sleep_for(step_);
    }
  }

  // Emits one token; returns whether the request finished.
  bool step(Live& live) {
    const SamplingParams& p = live.request.params;
    int32_t token = script_[live.generated % script_.size()];
    ++live.generated;
    RequestOutput out;
    out.new_token_ids = {token};
    out.num_prompt_tokens = int(live.request.prompt_ids.size());
    if (p.logprobs) {
      TokenLogprob lp{token, -0.25f, {}};
      for (int k = 0; k < *p.logprobs; ++k) lp.top.emplace_back(token + k, -0.25f - k);
      out.logprobs.push_back(lp);
    }
    bool armed = live.generated > p.min_tokens;
    bool is_stop = std::count(p.stop_token_ids.begin(), p.stop_token_ids.end(), token) ||
                   (!p.ignore_eos && std::count(eos_ids_.begin(), eos_ids_.end(), token));
    if (armed && is_stop)
      out.finish = FinishReason::kStop;
    else if (p.max_tokens && live.generated >= *p.max_tokens)
      out.finish = FinishReason::kLength;
    bool done = out.finish != FinishReason::kNone;
    live.stream->push(std::move(out));
    return done;
  }

  std::vector<int32_t> script_, eos_ids_;
  int block_size_, kv_blocks_total_;
  std::chrono::microseconds step_;
  mutable std::mutex mutex_;
  std::map<std::string, Live> live_;
  std::vector<EngineRequest> received_;
  std::set<std::string> aborted_;
  std::vector<std::string> aborted_transfers_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace tandem::test
