// Metrics on synthetic timings with answers worked out by hand (and numpy for percentiles).
#include "bench/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tandem::bench {
namespace {

RequestOutput ok(double start, double ttft, std::vector<double> itl, int prompt, int tokens) {
  RequestOutput o;
  o.success = true;
  o.start_time = start;
  o.ttft = ttft;
  o.itl = std::move(itl);
  o.latency = ttft;
  for (double g : o.itl) o.latency += g;
  o.prompt_len = prompt;
  o.output_tokens = tokens;
  return o;
}

TEST(Metrics, PercentileInterpolatesLikeNumpy) {
  // numpy.percentile([1, 2, 3, 4], p) for p = 0, 50, 99, 100 -> 1, 2.5, 3.97, 4.
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0), 1);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_NEAR(percentile({4, 1, 3, 2}, 99), 3.97, 1e-12);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 100), 4);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(percentile({}, 99), 0);
}

TEST(Metrics, KnownTimingsGiveKnownMetrics) {
  // A: TTFT 200 ms then 4 tokens 10 ms apart (5 tokens, E2EL 240 ms).
  // B: TTFT 100 ms then 2 tokens 30 ms apart (3 tokens, E2EL 160 ms).
  // C: failed.
  std::vector<RequestOutput> outs = {ok(0.0, 0.2, {0.01, 0.01, 0.01, 0.01}, 100, 5),
                                     ok(0.5, 0.1, {0.03, 0.03}, 50, 3), RequestOutput{}};
  outs[2].error = "boom";
  BenchmarkMetrics m = compute_metrics(outs, 2.0, {50, 99}, nullptr);
  EXPECT_EQ(m.completed, 2);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.total_input, 150);
  EXPECT_EQ(m.total_output, 8);
  EXPECT_EQ(m.output_lens, (std::vector<int>{5, 3, 0}));
  EXPECT_DOUBLE_EQ(m.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(m.output_throughput, 4.0);
  EXPECT_DOUBLE_EQ(m.total_token_throughput, 79.0);
  EXPECT_NEAR(m.ttft.mean_ms, 150, 1e-9);
  EXPECT_NEAR(m.ttft.median_ms, 150, 1e-9);
  EXPECT_NEAR(m.ttft.std_ms, 50, 1e-9);  // population std, as numpy
  // TPOT: (240 - 200) / 4 = 10 ms and (160 - 100) / 2 = 30 ms.
  EXPECT_NEAR(m.tpot.mean_ms, 20, 1e-9);
  // ITL over all six gaps: 10, 10, 10, 10, 30, 30.
  EXPECT_NEAR(m.itl.mean_ms, 100.0 / 6, 1e-9);
  EXPECT_NEAR(m.itl.median_ms, 10, 1e-9);
  ASSERT_EQ(m.itl.percentiles_ms.size(), 2u);
  EXPECT_EQ(m.itl.percentiles_ms[1].first, 99);
  EXPECT_NEAR(m.itl.percentiles_ms[1].second, 30, 1e-9);
  EXPECT_NEAR(m.e2el.mean_ms, 200, 1e-9);
  EXPECT_NEAR(m.e2el.percentiles_ms[0].second, 200, 1e-9);
  // A's tokens at 0.20..0.24 s and B's at 0.60..0.66 s all fall in second 0.
  EXPECT_DOUBLE_EQ(m.max_output_tokens_per_s, 8);
  EXPECT_EQ(m.max_concurrent_requests, 1);  // [0, 0.24) and [0.5, 0.66) do not overlap
}

TEST(Metrics, PeakConcurrencyCountsOverlaps) {
  std::vector<RequestOutput> outs = {ok(0.0, 1.0, {}, 1, 1), ok(0.5, 1.0, {}, 1, 1),
                                     ok(0.9, 1.0, {}, 1, 1), ok(1.0, 1.0, {}, 1, 1)};
  // [0,1) [0.5,1.5) [0.9,1.9) [1,2): three at once (the first ends as the last starts).
  EXPECT_EQ(compute_metrics(outs, 2.0, {99}, nullptr).max_concurrent_requests, 3);
}

TEST(Metrics, SingleTokenRequestsHaveNoTpotAndMissingUsageIsCounted) {
  RequestOutput one = ok(0, 0.05, {}, 10, 1);
  RequestOutput no_usage = ok(0, 0.05, {0.01}, 10, 0);
  no_usage.generated_text = "a b c";
  BenchmarkMetrics m = compute_metrics({one, no_usage}, 1.0, {99},
                                       [](const std::string& t) { return int(t.size()); });
  EXPECT_EQ(m.output_lens, (std::vector<int>{1, 5}));
  // Only no_usage has > 1 token: TPOT = (60 - 50) / 4 ms.
  EXPECT_NEAR(m.tpot.mean_ms, 2.5, 1e-9);
}

TEST(Metrics, NoSuccessGivesZeros) {
  RequestOutput failed;
  BenchmarkMetrics m = compute_metrics({failed}, 1.0, {99}, nullptr);
  EXPECT_EQ(m.completed, 0);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.ttft.mean_ms, 0);
  EXPECT_EQ(m.ttft.percentiles_ms[0].second, 0);
  EXPECT_EQ(m.max_concurrent_requests, 0);
}

}  // namespace
}  // namespace tandem::bench
