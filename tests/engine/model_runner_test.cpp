// ModelRunner's two sampling routes, on a fake backend that returns logits the test sets: with a
// device sampler, rows that only the temperature shapes take the backend's pick (ids the host
// would not choose, so the route shows) with the draw the host would make, and only the other
// rows' logits are asked for; without it, every row goes through the host sampler. Also
// SamplerState::device_draw.
#include "engine/model_runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>

#include "core/error.h"
#include "engine/sampler.h"
#include "engine/sequence.h"
#include "engine/stop_checker.h"

namespace tandem {
namespace {

constexpr int kVocab = 6;
constexpr int kRunnerBlockSize = 4;
const std::vector<int32_t> kRunnerEos = {5};

class FakeBackend : public ModelBackend {
 public:
  explicit FakeBackend(bool device_sampler) : device_sampler_(device_sampler) {
    config_.model_type = "llama";
    config_.vocab_size = kVocab;
    config_.num_layers = 1;
    config_.num_kv_heads = 1;
    config_.head_dim = 2;
  }
  const ModelConfig& config() const override { return config_; }
  void allocate_kv_cache(int64_t, int) override {}
  KvCacheShape kv_cache_shape() const override {
    return {1, 8, kRunnerBlockSize, 1, 2, DType::kF32};
  }
  void forward(const ForwardBatch& batch, float* logits) override {
    ++forward_calls;
    for (size_t r = 0; r < batch.logits_indices.size(); ++r) {
      std::copy(rows[r].begin(), rows[r].end(), logits + r * kVocab);
    }
  }
  bool has_device_sampler() const override { return device_sampler_; }
  void forward_sampled(const ForwardBatch& batch, std::span<const DeviceDraw> d,
                       std::span<const int32_t> host_rows, float* logits,
                       DevicePicks& out) override {
    draws.assign(d.begin(), d.end());
    asked_rows.assign(host_rows.begin(), host_rows.end());
    for (size_t i = 0; i < host_rows.size(); ++i) {
      const auto& row = rows[size_t(host_rows[i])];
      std::copy(row.begin(), row.end(), logits + i * kVocab);
    }
    const size_t m = batch.logits_indices.size();
    out.ids.assign(picks.begin(), picks.begin() + long(m));
    out.logprobs.assign(m, -0.25f);
    out.invalid.assign(invalid.begin(), invalid.begin() + long(m));
  }

  std::vector<std::vector<float>> rows;  // the logits of each logits row
  std::vector<int32_t> picks;            // the "device's" pick per row
  std::vector<int32_t> invalid = std::vector<int32_t>(8, 0);
  std::vector<int32_t> asked_rows;  // host_rows of the last forward_sampled
  std::vector<DeviceDraw> draws;    // draws of the last forward_sampled
  int forward_calls = 0;

 private:
  ModelConfig config_;
  bool device_sampler_;
};

// A sequence with a 3-token prompt, scheduled whole and sampling.
struct TestSeq {
  explicit TestSeq(const std::string& id, SamplingParams params) {
    EngineRequest req;
    req.request_id = id;
    req.prompt_ids = {1, 2, 3};
    req.params = params;
    seq = std::make_unique<Sequence>(std::move(req), nullptr, /*max_model_len=*/16);
    seq->blocks.table = {0};
    seq->sampler = std::make_unique<SamplerState>(params, seq->token_ids, kRunnerEos);
    seq->stop = std::make_unique<StopChecker>(params, kRunnerEos);
  }
  std::unique_ptr<Sequence> seq;
};

SamplingParams greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

SchedulerOutput schedule_all(const std::vector<TestSeq*>& seqs) {
  SchedulerOutput out;
  for (TestSeq* s : seqs) out.seqs.push_back({s->seq.get(), 3, true});
  return out;
}

TEST(ModelRunner, DeviceGreedyTakesPlainGreedyRowsAndSamplesTheRestOnTheHost) {
  FakeBackend model(/*device_sampler=*/true);
  Sampler sampler;
  ModelRunner runner(model, sampler);
  SamplingParams penalized = greedy();
  penalized.repetition_penalty = 1.5f;  // token 1 (in the prompt) drops from 3.0 to 2.0
  SamplingParams with_top = greedy();
  with_top.logprobs = 2;
  SamplingParams with_own = greedy();
  with_own.logprobs = 0;
  SamplingParams warm;
  warm.temperature = 0.8f;
  warm.seed = 7;
  TestSeq plain("plain", greedy()), pen("pen", penalized), top("top", with_top),
      own("own", with_own), drawn("drawn", warm);
  model.rows = {{0, 1, 2, 3, 0, 0},
                {0, 3.0f, 0, 0, 2.5f, 0},
                {0, 0, 0, 7, 1, 0},
                {1, 0, 0, 0, 0, 0},
                {0, 0, 0, 0, 0, 0}};
  model.picks = {4, 0, 0, 2, 5};  // unlike the host's choice in every row: the route shows

  RunnerOutput r = runner.run(schedule_all({&plain, &pen, &top, &own, &drawn}));
  EXPECT_EQ(model.asked_rows, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(model.forward_calls, 0);
  // The draw carries the temperature and the first uniform number of the sequence's seeded RNG.
  ASSERT_EQ(model.draws.size(), 5u);
  EXPECT_EQ(model.draws[0].temperature, 0.0f);
  EXPECT_EQ(model.draws[4].temperature, 0.8f);
  std::mt19937_64 rng(7);
  EXPECT_EQ(model.draws[4].u, double(rng() >> 11) * 0x1.0p-53);
  ASSERT_EQ(r.tokens.size(), 5u);
  EXPECT_EQ(r.tokens[4].token_id, 5);
  EXPECT_EQ(r.tokens[0].token_id, 4);  // the device's pick
  EXPECT_EQ(r.tokens[1].token_id, 4);  // the host's, after the penalty
  EXPECT_EQ(r.tokens[2].token_id, 3);
  EXPECT_EQ(r.tokens[3].token_id, 2);
  EXPECT_FALSE(r.samples[0]->logprobs.has_value());
  ASSERT_TRUE(r.samples[2]->logprobs.has_value());
  EXPECT_EQ(r.samples[2]->logprobs->top.size(), 2u);
  ASSERT_TRUE(r.samples[3]->logprobs.has_value());
  EXPECT_FLOAT_EQ(r.samples[3]->logprobs->logprob, -0.25f);
  EXPECT_EQ(r.samples[3]->logprobs->rank, 1);
  EXPECT_TRUE(r.samples[3]->logprobs->top.empty());
  for (TestSeq* s : {&plain, &pen, &top, &own, &drawn}) {
    EXPECT_EQ(s->seq->sampler->num_output_tokens(), 1) << s->seq->request_id;
  }
}

TEST(ModelRunner, DeviceRowFlaggedInvalidFailsTheStep) {
  FakeBackend model(/*device_sampler=*/true);
  Sampler sampler;
  ModelRunner runner(model, sampler);
  TestSeq a("a", greedy()), b("b", greedy());
  model.rows = {{0, 1, 0, 0, 0, 0}, {0, 0, 1, 0, 0, 0}};
  model.picks = {1, 2};
  model.invalid[1] = 1;
  EXPECT_THROW(runner.run(schedule_all({&a, &b})), Error);
}

TEST(ModelRunner, WithoutDeviceSamplerEveryRowIsSampledOnTheHost) {
  FakeBackend model(/*device_sampler=*/false);
  Sampler sampler;
  ModelRunner runner(model, sampler);
  TestSeq a("a", greedy()), b("b", greedy());
  model.rows = {{0, 1, 0, 0, 0, 0}, {0, 0, 0, 0, 2, 0}};
  RunnerOutput r = runner.run(schedule_all({&a, &b}));
  EXPECT_EQ(model.forward_calls, 1);
  EXPECT_EQ(r.tokens[0].token_id, 1);
  EXPECT_EQ(r.tokens[1].token_id, 4);
}

TEST(SamplerState, DeviceDrawUnlessTheLogitsNeedTheSequencesHistory) {
  const std::vector<int32_t> prompt = {1, 2};
  auto draw = [&](const SamplingParams& p) {
    return SamplerState(p, prompt, kRunnerEos).device_draw();
  };
  ASSERT_TRUE(draw(greedy()).has_value());
  EXPECT_EQ(draw(greedy())->temperature, 0.0f);
  SamplingParams p = greedy();
  p.temperature = 0.7f;
  p.seed = 11;
  SamplerState seeded(p, prompt, kRunnerEos);
  std::mt19937_64 rng(11);
  for (int i = 0; i < 2; ++i) {  // one uniform number a token, from the sequence's RNG
    std::optional<DeviceDraw> d = seeded.device_draw();
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->temperature, 0.7f);
    EXPECT_EQ(d->u, double(rng() >> 11) * 0x1.0p-53);
  }
  for (auto shape : std::vector<std::function<void(SamplingParams&)>>{
           [](SamplingParams& q) { q.frequency_penalty = 0.5f; },
           [](SamplingParams& q) { q.presence_penalty = -0.5f; },
           [](SamplingParams& q) { q.repetition_penalty = 1.1f; },
           [](SamplingParams& q) { q.logprobs = 1; },
           [](SamplingParams& q) {  // a drawn token's logprob rank is the host's to find
             q.temperature = 1.0f;
             q.logprobs = 0;
           }}) {
    SamplingParams q = greedy();
    shape(q);
    EXPECT_FALSE(draw(q).has_value());
  }
  p.top_k = 40;  // the cuts travel with the draw
  p.top_p = 0.9f;
  p.min_p = 0.05f;
  std::optional<DeviceDraw> cut = SamplerState(p, prompt, kRunnerEos).device_draw();
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(cut->top_k, 40);
  EXPECT_EQ(cut->top_p, 0.9f);
  EXPECT_EQ(cut->min_p, 0.05f);
  p = greedy();
  p.logprobs = 0;  // a greedy token's own logprob the device returns
  EXPECT_TRUE(draw(p).has_value());
  // min_tokens masks EOS until two tokens are out; with no stop id at all, nothing is masked.
  p = greedy();
  p.min_tokens = 2;
  p.max_tokens = 4;
  SamplerState masked(p, prompt, kRunnerEos);
  EXPECT_FALSE(masked.device_draw().has_value());
  masked.append_output_token(3);
  EXPECT_FALSE(masked.device_draw().has_value());
  masked.append_output_token(3);
  EXPECT_TRUE(masked.device_draw().has_value());
  EXPECT_TRUE(SamplerState(p, prompt, {}).device_draw().has_value());
}

}  // namespace
}  // namespace tandem
