// Sampler: greedy/argmax, seeded reproducibility, top-k / top-p / min-p against exact and
// empirical (fixed-seed) distributions, each penalty against hand-computed values, the
// min_tokens mask, raw-logit logprobs, batches on a thread pool, and bad-input errors.
#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"

namespace tandem {
namespace {

const std::vector<int32_t> kNoTokens;

// Logits whose softmax is exactly `probs` (up to rounding).
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(float(std::log(p)));
  return logits;
}

// [n] logits drawn from N(0, scale^2) with a fixed seed.
std::vector<float> random_logits(size_t n, uint64_t seed, float scale = 3.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(n);
  for (float& x : logits) x = normal(rng);
  return logits;
}

SamplingParams seeded(int64_t seed) {
  SamplingParams params;
  params.seed = seed;
  return params;
}

// Draws `draws` tokens and returns each token's frequency.
std::vector<double> frequencies(Sampler& sampler, const std::vector<float>& logits,
                                SamplerState& state, int draws) {
  std::vector<double> freq(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) freq[sampler.sample(logits, state).token_id] += 1.0 / draws;
  return freq;
}

// Checks the exact distribution and, with 20000 seeded draws, the empirical one (4+ sigma).
void expect_distribution(const std::vector<float>& logits, const SamplingParams& params,
                         const std::vector<double>& expected) {
  Sampler sampler;
  SamplerState state(params, kNoTokens, kNoTokens);
  std::vector<double> exact(logits.size(), 0.0);
  for (const TokenProb& tp : sampler.distribution(logits, state)) exact[tp.token_id] = tp.prob;
  std::vector<double> freq = frequencies(sampler, logits, state, 20000);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(exact[i], expected[i], 1e-6) << "token " << i;
    EXPECT_NEAR(freq[i], expected[i], 0.015) << "token " << i;
    if (expected[i] == 0.0) {
      EXPECT_EQ(freq[i], 0.0) << "token " << i << " was filtered out";
    }
  }
}

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  Sampler sampler;
  SamplingParams params;
  params.temperature = 0.0f;
  std::vector<float> logits = random_logits(1000, 1);
  SamplerState state(params, kNoTokens, kNoTokens);
  int32_t expected = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(sampler.sample(logits, state).token_id, expected);
  EXPECT_EQ(state.num_output_tokens(), 5);
  std::vector<float> tied = {0.5f, 2.0f, -1.0f, 2.0f, 2.0f};
  EXPECT_EQ(sampler.sample(tied, state).token_id, 1);
  auto dist = sampler.distribution(tied, state);
  ASSERT_EQ(dist.size(), 1u);
  EXPECT_EQ(dist[0].token_id, 1);
  EXPECT_EQ(dist[0].prob, 1.0);
}

std::vector<int32_t> draw_many(const SamplingParams& params, const std::vector<float>& logits,
                               int count) {
  Sampler sampler;
  SamplerState state(params, kNoTokens, kNoTokens);
  std::vector<int32_t> tokens;
  for (int i = 0; i < count; ++i) tokens.push_back(sampler.sample(logits, state).token_id);
  return tokens;
}

TEST(Sampler, SeedMakesDrawsReproducible) {
  std::vector<float> logits = random_logits(1000, 2, 0.5f);
  std::vector<int32_t> a = draw_many(seeded(1234), logits, 64);
  EXPECT_EQ(a, draw_many(seeded(1234), logits, 64));
  EXPECT_NE(a, draw_many(seeded(1235), logits, 64));
  EXPECT_NE(a, draw_many(seeded(-1234), logits, 64));
  // Unseeded states draw from a global random source: two of them differ.
  EXPECT_NE(draw_many(SamplingParams{}, logits, 64), draw_many(SamplingParams{}, logits, 64));
  // Not a constant: a near-uniform row over 1000 tokens gives many distinct tokens.
  std::sort(a.begin(), a.end());
  EXPECT_GT(std::unique(a.begin(), a.end()) - a.begin(), 50);
}

TEST(Sampler, TopK1IsGreedy) {
  std::vector<float> logits = random_logits(5000, 3);
  SamplingParams params = seeded(7);
  params.top_k = 1;
  int32_t argmax = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  for (int32_t token : draw_many(params, logits, 200)) EXPECT_EQ(token, argmax);
}

TEST(Sampler, TemperatureScalesLogits) {
  std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
  SamplingParams params = seeded(11);
  params.temperature = 2.0f;
  std::vector<double> expected;  // softmax(log(p) / 2) = sqrt(p) / sum(sqrt(p))
  double z = 0.0;
  for (double p : probs) z += std::sqrt(p);
  for (double p : probs) expected.push_back(std::sqrt(p) / z);
  expect_distribution(logits_of(probs), params, expected);
}

TEST(Sampler, TopKKeepsTheKLargestAndTheirTies) {
  std::vector<double> probs = {0.1, 0.4, 0.2, 0.25, 0.05};
  SamplingParams params = seeded(12);
  params.top_k = 2;
  expect_distribution(logits_of(probs), params, {0.0, 0.4 / 0.65, 0.0, 0.25 / 0.65, 0.0});
  // A tie at the k-th value keeps every tied token, like vLLM's `logits < kth` mask.
  Sampler sampler;
  SamplerState state(params, kNoTokens, kNoTokens);
  EXPECT_EQ(sampler.distribution(std::vector<float>{3.0f, 1.0f, 2.0f, 2.0f, 0.0f}, state).size(),
            3u);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  std::vector<float> logits = logits_of({0.1, 0.4, 0.2, 0.3});
  SamplingParams params = seeded(13);
  params.top_p = 0.65f;  // 0.4 + 0.3 = 0.7 >= 0.65: tokens 1 and 3
  expect_distribution(logits, params, {0.0, 0.4 / 0.7, 0.0, 0.3 / 0.7});
  params.top_p = 0.75f;  // 0.4 + 0.3 + 0.2 = 0.9 >= 0.75
  expect_distribution(logits, params, {0.0, 0.4 / 0.9, 0.2 / 0.9, 0.3 / 0.9});
  params.top_p = 0.35f;  // the most likely token alone
  expect_distribution(logits, params, {0.0, 1.0, 0.0, 0.0});
}

TEST(Sampler, TopPAppliesToTheTopKDistribution) {
  std::vector<float> logits = logits_of({0.1, 0.4, 0.2, 0.3});
  SamplingParams params = seeded(14);
  params.top_k = 2;     // renormalized: 4/7, 3/7
  params.top_p = 0.6f;  // 4/7 = 0.571 < 0.6: both stay
  expect_distribution(logits, params, {0.0, 0.4 / 0.7, 0.0, 0.3 / 0.7});
}

// All ids by (logit desc, id asc): a full sort.
std::vector<int32_t> sorted_ids(const std::vector<float>& logits) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  return ids;
}

// The ids top_p keeps, from the full sort, in double (the reference for the selection).
std::vector<int32_t> reference_top_p(const std::vector<float>& logits, std::vector<int32_t> ids,
                                     double top_p) {
  double max = logits[ids[0]], total = 0.0;
  for (float x : logits) total += std::exp(x - max);
  double above = 0.0;
  size_t count = 0;
  while (count < ids.size() && above < top_p * total) above += std::exp(logits[ids[count++]] - max);
  ids.resize(count);
  return ids;
}

// Full-size vocabs: flat, peaked (LLM-like: one strong token and a heavy tail) and with
// many exact ties; top_p from tiny to nearly 1, so that the cut falls anywhere.
TEST(Sampler, TopPOnAFullSizeVocabMatchesAFullSort) {
  std::vector<float> flat = random_logits(128256, 4, 2.0f);
  std::vector<float> peaked = random_logits(128256, 5, 1.5f);
  peaked[777] += 14.0f;
  std::vector<float> tied = random_logits(128256, 6, 2.0f);
  for (float& x : tied) x = std::round(x * 2.0f) / 2.0f;
  Sampler sampler;
  for (const auto* logits : {&flat, &peaked, &tied}) {
    std::vector<int32_t> order = sorted_ids(*logits);
    for (float top_p : {0.05f, 0.5f, 0.9f, 0.999f}) {
      SamplingParams params = seeded(15);
      params.top_p = top_p;
      SamplerState state(params, kNoTokens, kNoTokens);
      std::vector<int32_t> kept;
      for (const TokenProb& tp : sampler.distribution(*logits, state)) kept.push_back(tp.token_id);
      ASSERT_EQ(kept, reference_top_p(*logits, order, top_p)) << "top_p " << top_p;
      int32_t token = sampler.sample(*logits, state).token_id;
      EXPECT_NE(std::find(kept.begin(), kept.end(), token), kept.end());
    }
  }
}

TEST(Sampler, ProbabilitiesAreAccurateOverTheWholeFloatRange) {
  std::vector<float> logits = {0.0f, -1.0f, -5.0f, -20.0f, -50.0f, -80.0f, -86.5f, -95.0f};
  Sampler sampler;
  SamplerState state(seeded(18), kNoTokens, kNoTokens);
  double z = 0.0;
  for (float x : logits) z += std::exp(double(x));
  std::vector<TokenProb> dist = sampler.distribution(logits, state);
  ASSERT_EQ(dist.size(), 7u);  // exp(-95) underflows float: dropped
  for (const TokenProb& tp : dist) {
    double expected = std::exp(double(logits[tp.token_id])) / z;
    EXPECT_NEAR(tp.prob / expected, 1.0, 1e-6) << "token " << tp.token_id;
  }
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheMax) {
  std::vector<float> logits = logits_of({0.05, 0.5, 0.15, 0.3});
  SamplingParams params = seeded(16);
  params.min_p = 0.2f;  // threshold 0.1: token 0 goes
  expect_distribution(logits, params, {0.0, 0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95});
  params.min_p = 0.5f;  // threshold 0.25
  expect_distribution(logits, params, {0.0, 0.5 / 0.8, 0.0, 0.3 / 0.8});
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingParams params;
  params.repetition_penalty = 2.0f;
  std::vector<int32_t> prompt = {1, 2};
  SamplerState state(params, prompt, kNoTokens);
  state.append_output_token(3);
  state.append_output_token(3);
  std::vector<float> logits = {1.0f, 3.0f, -1.5f, 4.0f, 0.5f};
  apply_penalties(logits, state);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 1.5f, -3.0f, 2.0f, 0.5f}));
}

TEST(Sampler, FrequencyAndPresencePenaltiesUseOutputTokensOnly) {
  SamplingParams params;
  params.frequency_penalty = 0.5f;
  params.presence_penalty = 0.25f;
  std::vector<int32_t> prompt = {0, 1};
  SamplerState state(params, prompt, kNoTokens);
  for (int32_t token : {1, 3, 3, 3}) state.append_output_token(token);
  std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  apply_penalties(logits, state);
  // token 1: 1 - 0.5 - 0.25; token 3: 1 - 1.5 - 0.25; token 0 is only in the prompt.
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 0.25f, 1.0f, -0.75f}));
}

TEST(Sampler, AllPenaltiesTogether) {
  SamplingParams params;
  params.repetition_penalty = 2.0f;
  params.frequency_penalty = 0.5f;
  params.presence_penalty = 0.25f;
  std::vector<int32_t> prompt = {1, 2};
  SamplerState state(params, prompt, kNoTokens);
  for (int32_t token : {2, 3, 3}) state.append_output_token(token);
  std::vector<float> logits = {1.0f, 2.0f, -1.0f, 4.0f, 0.5f};
  apply_penalties(logits, state);
  // 2: -1 * 2 - 0.5 - 0.25; 3: 4 / 2 - 1.0 - 0.25.
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 1.0f, -2.75f, 0.75f, 0.5f}));
  // The sampler sees the penalized row: greedy now picks token 0 (1.0 ties token 1: lowest id).
  params.temperature = 0.0f;
  SamplerState greedy(params, prompt, kNoTokens);
  for (int32_t token : {2, 3, 3}) greedy.append_output_token(token);
  Sampler sampler;
  EXPECT_EQ(sampler.sample(std::vector<float>{1.0f, 2.0f, -1.0f, 4.0f, 0.5f}, greedy).token_id, 0);
}

TEST(Sampler, MinTokensMasksEosAndStopTokenIds) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.min_tokens = 3;
  params.stop_token_ids = {2};
  std::vector<int32_t> eos = {4, 5};
  SamplerState state(params, kNoTokens, eos);
  std::vector<float> logits = {0.0f, 1.0f, 8.0f, 0.5f, 9.0f, 7.0f};
  std::vector<int32_t> tokens;
  for (int i = 0; i < 4; ++i) tokens.push_back(Sampler().sample(logits, state).token_id);
  EXPECT_EQ(tokens, (std::vector<int32_t>{1, 1, 1, 4}));
  // The mask also applies with ignore_eos (as in vLLM); ids beyond the vocab are skipped.
  params.ignore_eos = true;
  params.stop_token_ids = {2, 100};
  SamplerState ignoring(params, kNoTokens, eos);
  std::vector<float> masked = logits;
  apply_min_tokens_mask(masked, ignoring);
  EXPECT_EQ(masked[2], -INFINITY);
  EXPECT_EQ(masked[4], -INFINITY);
  EXPECT_EQ(masked[5], -INFINITY);
  EXPECT_EQ(masked[1], 1.0f);
  // Masked tokens are out of the sampled distribution.
  SamplingParams sampled;
  sampled.min_tokens = 1;
  SamplerState fresh(sampled, kNoTokens, eos);
  for (const TokenProb& tp : Sampler().distribution(logits, fresh)) {
    EXPECT_NE(tp.token_id, 4);
    EXPECT_NE(tp.token_id, 5);
  }
}

TEST(Sampler, LogprobsAreLogSoftmaxOfRawLogitsMostLikelyFirst) {
  std::vector<float> logits = random_logits(3000, 5);
  SamplingParams params = seeded(17);
  params.logprobs = 5;
  params.temperature = 0.7f;
  params.repetition_penalty = 1.5f;  // neither changes the reported logprobs
  std::vector<int32_t> prompt = {0, 1, 2};
  SamplerState state(params, prompt, kNoTokens);
  double max = *std::max_element(logits.begin(), logits.end()), sum = 0.0;
  for (float x : logits) sum += std::exp(x - max);
  auto reference = [&](int32_t id) { return double(logits[id]) - max - std::log(sum); };
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  Sampler sampler;
  for (int step = 0; step < 3; ++step) {
    SampleResult result = sampler.sample(logits, state);
    ASSERT_TRUE(result.logprobs);
    EXPECT_NEAR(result.logprobs->logprob, reference(result.token_id), 1e-4);
    int32_t rank = int32_t(std::find(order.begin(), order.end(), result.token_id) - order.begin());
    EXPECT_EQ(result.logprobs->rank, rank + 1);
    ASSERT_EQ(result.logprobs->top.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(result.logprobs->top[i].token_id, order[i]);
      EXPECT_NEAR(result.logprobs->top[i].logprob, reference(order[i]), 1e-4);
    }
  }
}

TEST(Sampler, LogprobsZeroGivesOnlyTheSampledTokenAndNoneWhenUnset) {
  Sampler sampler;
  SamplingParams params;
  params.temperature = 0.0f;
  params.logprobs = 0;
  SamplerState state(params, kNoTokens, kNoTokens);
  SampleResult result = sampler.sample(std::vector<float>{0.0f, std::log(3.0f)}, state);
  ASSERT_TRUE(result.logprobs);
  EXPECT_NEAR(result.logprobs->logprob, std::log(0.75), 1e-6);
  EXPECT_EQ(result.logprobs->rank, 1);
  EXPECT_TRUE(result.logprobs->top.empty());
  SamplerState plain(SamplingParams{}, kNoTokens, kNoTokens);
  EXPECT_FALSE(sampler.sample(std::vector<float>{0.0f, 1.0f}, plain).logprobs);
}

TEST(Sampler, BatchOnAThreadPoolMatchesOneRowAtATime) {
  const size_t vocab = 4096, rows = 9;
  std::vector<float> logits = random_logits(vocab * rows, 6);
  std::vector<SamplerState> batch_states, row_states;
  for (size_t i = 0; i < rows; ++i) {
    SamplingParams params = seeded(int64_t(100 + i));
    params.top_k = int(i % 3) * 20;
    params.top_p = i % 2 ? 0.9f : 1.0f;
    params.temperature = i == 4 ? 0.0f : 0.8f;
    params.frequency_penalty = 0.3f;
    params.logprobs = 2;
    batch_states.emplace_back(params, kNoTokens, kNoTokens);
    row_states.emplace_back(params, kNoTokens, kNoTokens);
  }
  std::vector<SamplerState*> pointers;
  for (auto& s : batch_states) pointers.push_back(&s);
  ThreadPool pool(3);
  Sampler parallel(&pool), serial;
  for (int step = 0; step < 4; ++step) {
    std::vector<SampleResult> results = parallel.sample_batch(logits, vocab, pointers);
    ASSERT_EQ(results.size(), rows);
    for (size_t i = 0; i < rows; ++i) {
      std::span<const float> row(logits.data() + i * vocab, vocab);
      SampleResult expected = serial.sample(row, row_states[i]);
      EXPECT_EQ(results[i].token_id, expected.token_id) << "row " << i;
      EXPECT_EQ(results[i].logprobs->top[0].token_id, expected.logprobs->top[0].token_id);
    }
  }
}

TEST(Sampler, BadInputsThrowClearErrors) {
  Sampler sampler;
  SamplerState state(SamplingParams{}, kNoTokens, kNoTokens);
  std::vector<float> nan_row = {0.0f, NAN, 1.0f};
  EXPECT_THROW(sampler.sample(nan_row, state), Error);
  EXPECT_THROW(sampler.sample(std::vector<float>{0.0f, INFINITY}, state), Error);
  EXPECT_THROW(sampler.sample(std::vector<float>{}, state), Error);
  std::vector<SamplerState*> one = {&state};
  EXPECT_THROW(sampler.sample_batch(std::vector<float>(5), 3, one), Error);
  ThreadPool pool(2);
  Sampler parallel(&pool);
  std::vector<SamplerState*> two = {&state, &state};
  EXPECT_THROW(parallel.sample_batch(std::vector<float>{0.0f, 1.0f, NAN, 0.0f}, 2, two), Error);

  SamplingParams penalized;
  penalized.repetition_penalty = 1.2f;
  std::vector<int32_t> prompt = {7};
  SamplerState out_of_vocab(penalized, prompt, kNoTokens);
  try {
    sampler.sample(std::vector<float>{0.0f, 1.0f}, out_of_vocab);
    ADD_FAILURE() << "a prompt token beyond the vocab was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 7"), std::string::npos) << e.what();
  }
  SamplingParams invalid;
  invalid.top_p = 0.0f;
  EXPECT_THROW(SamplerState(invalid, kNoTokens, kNoTokens), Error);
  std::vector<int32_t> negative = {-1};
  EXPECT_THROW(SamplerState(penalized, negative, kNoTokens), Error);
}

}  // namespace
}  // namespace tandem
