// The printed block has vLLM's labels and column layout; the result JSON has vLLM's keys plus
// per-request records; failures are listed.
#include "bench/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tandem::bench {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Fixture {
  std::vector<RequestOutput> outputs;
  BenchmarkMetrics metrics;
  ReportConfig config;
};

Fixture make_fixture() {
  Fixture f;
  RequestOutput a;
  a.success = true;
  a.prompt_len = 10;
  a.output_tokens = 3;
  a.arrival_time = 0.1;
  a.start_time = 0.25;
  a.ttft = 0.2;
  a.itl = {0.01, 0.02};
  a.latency = 0.23;
  a.end_time = 0.49;
  a.generated_text = "abc";
  RequestOutput b;
  b.error = "HTTP 404 Not Found: nope";
  f.outputs = {a, b};
  f.config.model_id = "models/stories260K";
  f.config.tokenizer_id = "models/stories260K";
  f.config.num_prompts = 2;
  f.config.request_rate = 4;
  f.config.burstiness = 1;
  f.config.max_concurrency = 8;
  f.config.percentiles = {50, 99.9};
  f.config.date = "20261125-120000";
  f.config.metadata = {{"machine", "test box"}};
  f.metrics = compute_metrics(f.outputs, 2.0, f.config.percentiles, nullptr);
  return f;
}

TEST(Report, TheBlockHasVllmsLabelsAndColumns) {
  Fixture f = make_fixture();
  std::string block = format_result_block(f.metrics, 2.0, f.config);
  EXPECT_THAT(block, HasSubstr("============ Serving Benchmark Result ============\n"));
  // "{:<40} {:<10}" as in vLLM: label padded to 40, a space, value padded to 10.
  EXPECT_THAT(block, HasSubstr("Successful requests:                     1         \n"));
  EXPECT_THAT(block, HasSubstr("Failed requests:                         1         \n"));
  EXPECT_THAT(block, HasSubstr("Maximum request concurrency:             8         \n"));
  EXPECT_THAT(block, HasSubstr("Request rate configured (RPS):           4.00      \n"));
  EXPECT_THAT(block, HasSubstr("Benchmark duration (s):                  2.00      \n"));
  EXPECT_THAT(block, HasSubstr("Total input tokens:                      10        \n"));
  EXPECT_THAT(block, HasSubstr("Total generated tokens:                  3         \n"));
  EXPECT_THAT(block, HasSubstr("Request throughput (req/s):              0.50      \n"));
  EXPECT_THAT(block, HasSubstr("Output token throughput (tok/s):         1.50      \n"));
  EXPECT_THAT(block, HasSubstr("Peak output token throughput (tok/s):"));
  EXPECT_THAT(block, HasSubstr("Peak concurrent requests:                1.00      \n"));
  EXPECT_THAT(block, HasSubstr("Total token throughput (tok/s):          6.50      \n"));
  EXPECT_THAT(block, HasSubstr("---------------Time to First Token----------------\n"));
  EXPECT_THAT(block, HasSubstr("Mean TTFT (ms):                          200.00    \n"));
  EXPECT_THAT(block, HasSubstr("Median TTFT (ms):"));
  EXPECT_THAT(block, HasSubstr("P50 TTFT (ms):"));
  EXPECT_THAT(block, HasSubstr("P99.9 TTFT (ms):"));
  EXPECT_THAT(block, HasSubstr("-----Time per Output Token (excl. 1st token)------\n"));
  EXPECT_THAT(block, HasSubstr("Mean TPOT (ms):                          15.00     \n"));
  EXPECT_THAT(block, HasSubstr("---------------Inter-token Latency----------------\n"));
  EXPECT_THAT(block, HasSubstr("Mean ITL (ms):                           15.00     \n"));
  EXPECT_THAT(block, HasSubstr("----------------End-to-end Latency----------------\n"));
  EXPECT_THAT(block, HasSubstr("Mean E2EL (ms):                          230.00    \n"));
  EXPECT_THAT(block, ::testing::EndsWith(std::string(50, '=') + "\n"));
  // Only the asked metrics; no rate line for inf, no concurrency line without a limit.
  f.config.percentile_metrics = {"ttft"};
  f.config.request_rate = std::numeric_limits<double>::infinity();
  f.config.max_concurrency.reset();
  block = format_result_block(f.metrics, 2.0, f.config);
  EXPECT_THAT(block, Not(HasSubstr("TPOT")));
  EXPECT_THAT(block, Not(HasSubstr("E2EL")));
  EXPECT_THAT(block, Not(HasSubstr("Request rate configured")));
  EXPECT_THAT(block, Not(HasSubstr("Maximum request concurrency")));
}

TEST(Report, TrafficLinesAndFailures) {
  Fixture f = make_fixture();
  EXPECT_EQ(format_traffic(f.config),
            "Traffic request rate: 4.0\nBurstiness factor: 1.0 (Poisson process)\n"
            "Maximum request concurrency: 8\n");
  f.config.request_rate = std::numeric_limits<double>::infinity();
  f.config.burstiness = 0.5;
  f.config.max_concurrency.reset();
  EXPECT_EQ(format_traffic(f.config),
            "Traffic request rate: inf\nBurstiness factor: 0.5 (Gamma distribution)\n"
            "Maximum request concurrency: None\n");
  EXPECT_EQ(format_failures(f.outputs),
            "Failed requests during benchmark run detected (capping to 10):\n"
            "Error 0: HTTP 404 Not Found: nope\n");
  EXPECT_EQ(format_failures({f.outputs[0]}), "");
  std::vector<RequestOutput> many(15, f.outputs[1]);
  const std::string listed = format_failures(many);
  EXPECT_THAT(listed, HasSubstr("Error 9:"));
  EXPECT_THAT(listed, Not(HasSubstr("Error 10:")));
}

TEST(Report, TheJsonHasVllmsKeysAndPerRequestRecords) {
  Fixture f = make_fixture();
  auto j = result_json(f.metrics, f.outputs, 2.0, f.config);
  for (const char* key : {"date",
                          "endpoint_type",
                          "backend",
                          "label",
                          "model_id",
                          "tokenizer_id",
                          "num_prompts",
                          "request_rate",
                          "burstiness",
                          "max_concurrency",
                          "duration",
                          "completed",
                          "failed",
                          "total_input_tokens",
                          "total_output_tokens",
                          "request_throughput",
                          "request_goodput",
                          "output_throughput",
                          "total_token_throughput",
                          "max_output_tokens_per_s",
                          "max_concurrent_requests",
                          "mean_ttft_ms",
                          "median_ttft_ms",
                          "std_ttft_ms",
                          "p50_ttft_ms",
                          "p99.9_ttft_ms",
                          "mean_tpot_ms",
                          "p99.9_tpot_ms",
                          "mean_itl_ms",
                          "median_itl_ms",
                          "std_itl_ms",
                          "mean_e2el_ms",
                          "p99.9_e2el_ms",
                          "machine",
                          "requests"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["machine"], "test box");
  EXPECT_EQ(j["completed"], 1);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["max_concurrency"], 8);
  EXPECT_DOUBLE_EQ(j["mean_ttft_ms"].get<double>(), 200);
  EXPECT_FALSE(j.contains("ttfts"));  // vLLM drops the per-request arrays without --save-detailed
  ASSERT_EQ(j["requests"].size(), 2u);
  const auto& r = j["requests"][0];
  EXPECT_EQ(r["success"], true);
  EXPECT_EQ(r["output_tokens"], 3);
  EXPECT_DOUBLE_EQ(r["start_time"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(r["ttft"].get<double>(), 0.2);
  EXPECT_EQ(r["itl"].size(), 2u);
  EXPECT_EQ(j["requests"][1]["error"], "HTTP 404 Not Found: nope");
  EXPECT_NEAR(j["queue_times"][0].get<double>(), 0.15, 1e-12);

  f.config.detail = ResultDetail::kDetailed;
  f.config.request_rate = std::numeric_limits<double>::infinity();
  j = result_json(f.metrics, f.outputs, 2.0, f.config);
  for (const char* key : {"input_lens", "output_lens", "ttfts", "itls", "latencies", "start_times",
                          "generated_texts", "errors"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_EQ(j["generated_texts"][0], "abc");
}

TEST(Report, PythonFloatFormatting) {
  EXPECT_EQ(python_float(1.0), "1.0");
  EXPECT_EQ(python_float(0.5), "0.5");
  EXPECT_EQ(python_float(100), "100.0");
  EXPECT_EQ(python_float(std::numeric_limits<double>::infinity()), "inf");
}

}  // namespace
}  // namespace tandem::bench
