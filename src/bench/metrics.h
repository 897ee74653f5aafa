// Benchmark metrics computed from the per-request measurements exactly as vLLM's
// calculate_metrics does: throughputs over the benchmark duration, and mean / median / std /
// percentiles (numpy's linear interpolation) of TTFT, TPOT = (E2EL - TTFT) / (output tokens - 1)
// over requests with more than one token, ITL over every gap of every request, and E2EL.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "bench/request_output.h"

namespace tandem::bench {

struct MetricStats {
  double mean_ms = 0, median_ms = 0, std_ms = 0;          // 0 when there are no values
  std::vector<std::pair<double, double>> percentiles_ms;  // (percentile, value)
};

struct BenchmarkMetrics {
  int completed = 0;
  int failed = 0;
  int64_t total_input = 0;            // prompt tokens of the successful requests
  int64_t total_output = 0;           // output tokens of the successful requests
  double request_throughput = 0;      // completed / duration
  double output_throughput = 0;       // total_output / duration
  double total_token_throughput = 0;  // (total_input + total_output) / duration
  MetricStats ttft, tpot, itl, e2el;
  double max_output_tokens_per_s = 0;  // most tokens arriving in one 1-second bucket
  int max_concurrent_requests = 0;     // most requests in flight at one instant
  std::vector<int> output_lens;        // per request; 0 for a failed one
};

// Counts the tokens of a text, for servers that send no usage (vLLM uses its tokenizer).
using TokenCounter = std::function<int(const std::string&)>;

BenchmarkMetrics compute_metrics(const std::vector<RequestOutput>& outputs, double duration_s,
                                 const std::vector<double>& percentiles,
                                 const TokenCounter& count_tokens);

// numpy.percentile(values, p) with linear interpolation; 0 for no values. p in [0, 100].
double percentile(std::vector<double> values, double p);
// Mean, median, population std and percentiles of `values` (seconds), in milliseconds.
MetricStats summarize_ms(const std::vector<double>& values, const std::vector<double>& percentiles);

}  // namespace tandem::bench
