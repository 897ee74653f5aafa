// The side-by-side comparison: the block's labels, both values and the ratio second/first.
#include "bench/result_comparison.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tandem::bench {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ResultComparison, PrintsBothColumnsAndTheRatio) {
  nlohmann::json a = {{"completed", 30},       {"failed", 0},          {"request_throughput", 2.0},
                      {"mean_ttft_ms", 100.0}, {"p99_ttft_ms", 150.0}, {"p99.9_ttft_ms", 151.0},
                      {"mean_tpot_ms", 0.0}};
  nlohmann::json b = {{"completed", 30},       {"failed", 0},          {"request_throughput", 1.0},
                      {"mean_ttft_ms", 250.0}, {"p99_ttft_ms", 300.0}, {"p99.9_ttft_ms", 302.0},
                      {"mean_tpot_ms", 5.0}};
  const std::string out = format_comparison(a, "single", b, "1p1d");
  EXPECT_THAT(out, HasSubstr("single"));
  EXPECT_THAT(out, HasSubstr("1p1d"));
  EXPECT_THAT(
      out,
      HasSubstr(
          "Successful requests:                               30           30        1.00x\n"));
  EXPECT_THAT(
      out,
      HasSubstr(
          "Request throughput (req/s):                      2.00         1.00        0.50x\n"));
  EXPECT_THAT(
      out,
      HasSubstr(
          "Mean TTFT (ms):                                100.00       250.00        2.50x\n"));
  EXPECT_THAT(out, HasSubstr("P99 TTFT (ms):"));
  EXPECT_THAT(out, HasSubstr("P99.9 TTFT (ms):"));
  EXPECT_THAT(
      out,
      HasSubstr(
          "Mean TPOT (ms):                                  0.00         5.00            -\n"));
  EXPECT_THAT(out, Not(HasSubstr("ITL")));  // neither result has it
}

}  // namespace
}  // namespace tandem::bench
