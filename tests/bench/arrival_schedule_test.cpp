// Arrival times: rate inf sends everything at once; finite rates give gaps with mean 1/rate and
// a coefficient of variation of 1/sqrt(burstiness) (gamma shape), checked over 10,000 draws.
#include "bench/arrival_schedule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"

namespace tandem::bench {
namespace {

struct GapStats {
  double mean = 0, cv = 0;
};

GapStats gap_stats(const std::vector<double>& t) {
  std::vector<double> gaps = {t[0]};
  for (size_t i = 1; i < t.size(); ++i) gaps.push_back(t[i] - t[i - 1]);
  double mean = 0, var = 0;
  for (double g : gaps) mean += g;
  mean /= double(gaps.size());
  for (double g : gaps) var += (g - mean) * (g - mean);
  var /= double(gaps.size());
  return {mean, std::sqrt(var) / mean};
}

TEST(ArrivalSchedule, InfiniteRateSendsEverythingAtOnce) {
  auto t = arrival_offsets(5, {std::numeric_limits<double>::infinity(), 1.0, 0});
  EXPECT_EQ(t, std::vector<double>(5, 0.0));
}

TEST(ArrivalSchedule, GapsHaveTheRatesMeanAndTheBurstinessShape) {
  for (double burstiness : {0.25, 1.0, 4.0, 100.0}) {
    for (double rate : {1.0, 50.0}) {
      auto t = arrival_offsets(10000, {rate, burstiness, 1234});
      ASSERT_EQ(t.size(), 10000u);
      for (size_t i = 1; i < t.size(); ++i) ASSERT_GE(t[i], t[i - 1]);
      GapStats s = gap_stats(t);
      // Rescaled so the last request is due at n / rate: the mean gap is exact.
      EXPECT_NEAR(s.mean, 1.0 / rate, 1e-9 / rate);
      EXPECT_NEAR(t.back(), 10000 / rate, 1e-6);
      // CV of gamma(shape k) = 1/sqrt(k); the sampling error of the CV over 10,000 draws is a
      // few percent (relative), so 5% separates these shapes clearly.
      const double expected_cv = 1.0 / std::sqrt(burstiness);
      EXPECT_NEAR(s.cv, expected_cv, 0.05 * expected_cv) << "burstiness " << burstiness;
    }
  }
}

TEST(ArrivalSchedule, PoissonGapsAreExponential) {
  // For an exponential distribution P(gap > mean) = 1/e.
  auto t = arrival_offsets(10000, {10.0, 1.0, 99});
  int above = 0;
  double prev = 0;
  for (double x : t) {
    above += (x - prev) > 0.1;
    prev = x;
  }
  EXPECT_NEAR(above / 10000.0, std::exp(-1.0), 0.015);
}

TEST(ArrivalSchedule, InfiniteBurstinessGivesEvenGaps) {
  auto t = arrival_offsets(4, {2.0, std::numeric_limits<double>::infinity(), 0});
  ASSERT_EQ(t.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(t[i], 0.5 * double(i + 1));
}

TEST(ArrivalSchedule, TheSeedReproducesTheSchedule) {
  EXPECT_EQ(arrival_offsets(50, {3.0, 0.5, 5}), arrival_offsets(50, {3.0, 0.5, 5}));
  EXPECT_NE(arrival_offsets(50, {3.0, 0.5, 5}), arrival_offsets(50, {3.0, 0.5, 6}));
}

TEST(ArrivalSchedule, BadRateOrBurstinessIsAnError) {
  EXPECT_THROW((void)arrival_offsets(3, {0.0, 1.0, 0}), Error);
  EXPECT_THROW((void)arrival_offsets(3, {-1.0, 1.0, 0}), Error);
  EXPECT_THROW((void)arrival_offsets(3, {1.0, 0.0, 0}), Error);
  EXPECT_STREQ(arrival_distribution_name(1.0), "Poisson process");
  EXPECT_STREQ(arrival_distribution_name(100.0), "Gamma distribution");
}

}  // namespace
}  // namespace tandem::bench
