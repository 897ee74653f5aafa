// The benchmark's report: the result block `vllm bench serve` prints (same labels, same column
// widths), the failed-request summary, and the --save-result JSON with vLLM's keys plus
// "requests", one record per request (send time, TTFT, ITLs, tokens, error) for plots.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench/metrics.h"
#include "bench/request_output.h"

namespace tandem::bench {

// Metrics whose statistics may be reported (--percentile-metrics).
inline const std::vector<std::string> kPercentileMetricNames = {"ttft", "tpot", "itl", "e2el"};

enum class ResultDetail { kSummary, kDetailed };  // --save-detailed keeps vLLM's per-request arrays

struct ReportConfig {
  std::string backend = "openai";  // "openai" (completions) or "openai-chat"
  std::optional<std::string> label;
  std::string model_id;
  std::string tokenizer_id;
  int num_prompts = 0;
  double request_rate = 0;  // inf allowed
  double burstiness = 1.0;
  std::optional<int> max_concurrency;
  std::vector<std::string> percentile_metrics = kPercentileMetricNames;
  std::vector<double> percentiles = {99};
  std::string date;                             // "YYYYMMDD-HHMMSS", local time, as vLLM writes it
  std::map<std::string, std::string> metadata;  // --metadata KEY=VALUE
  ResultDetail detail = ResultDetail::kSummary;
};

// Python's str() of a float: "1.0", "0.5", "inf".
std::string python_float(double value);

// The "Traffic request rate / Burstiness factor / Maximum request concurrency" lines.
std::string format_traffic(const ReportConfig& config);
// "Failed requests during benchmark run detected (capping to 10):" and the first errors;
// "" when nothing failed.
std::string format_failures(const std::vector<RequestOutput>& outputs);
// The "==== Serving Benchmark Result ====" block.
std::string format_result_block(const BenchmarkMetrics& metrics, double duration_s,
                                const ReportConfig& config);

nlohmann::ordered_json result_json(const BenchmarkMetrics& metrics,
                                   const std::vector<RequestOutput>& outputs, double duration_s,
                                   const ReportConfig& config);

}  // namespace tandem::bench
