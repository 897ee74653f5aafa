// Report: the printed block and the result JSON, mirroring vllm/benchmarks/serve.py.
#include "bench/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "bench/arrival_schedule.h"

namespace tandem::bench {
namespace {

constexpr size_t kMaxErrorsShown = 10;

struct MetricInfo {
  const char* key;     // "ttft"
  const char* name;    // "TTFT"
  const char* header;  // "Time to First Token"
  MetricStats BenchmarkMetrics::*stats;
};

const MetricInfo kMetrics[] = {
    {"ttft", "TTFT", "Time to First Token", &BenchmarkMetrics::ttft},
    {"tpot", "TPOT", "Time per Output Token (excl. 1st token)", &BenchmarkMetrics::tpot},
    {"itl", "ITL", "Inter-token Latency", &BenchmarkMetrics::itl},
    {"e2el", "E2EL", "End-to-end Latency", &BenchmarkMetrics::e2el},
};

bool selected(const ReportConfig& c, const char* key) {
  return std::find(c.percentile_metrics.begin(), c.percentile_metrics.end(), key) !=
         c.percentile_metrics.end();
}

// "99" for 99.0, "99.9" for 99.9, as vLLM names percentile keys and labels.
std::string percentile_word(double p) {
  return p == std::floor(p) ? fmt::format("{}", int64_t(p)) : fmt::format("{}", p);
}

void line(std::string& out, const std::string& label, const std::string& value) {
  out += fmt::format("{:<40} {:<10}\n", label, value);
}
void line(std::string& out, const std::string& label, double value) {
  out += fmt::format("{:<40} {:<10.2f}\n", label, value);
}

// A JSON number, or "inf" as vLLM writes an infinite request rate.
nlohmann::ordered_json number_or_inf(double v) {
  return std::isinf(v) ? nlohmann::ordered_json("inf") : nlohmann::ordered_json(v);
}

nlohmann::ordered_json request_record(size_t index, const RequestOutput& o, int output_len) {
  return {{"index", index},
          {"success", o.success},
          {"error", o.error},
          {"prompt_len", o.prompt_len},
          {"output_tokens", output_len},
          {"arrival_time", o.arrival_time},
          {"start_time", o.start_time},
          {"ttft", o.ttft},
          {"itl", o.itl},
          {"latency", o.latency},
          {"end_time", o.end_time}};
}

}  // namespace

std::string python_float(double value) {
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (std::isnan(value)) return "nan";
  if (value == std::floor(value) && std::fabs(value) < 1e16) return fmt::format("{:.1f}", value);
  return fmt::format("{}", value);
}

std::string format_traffic(const ReportConfig& c) {
  std::string out = fmt::format("Traffic request rate: {}\n", python_float(c.request_rate));
  out += fmt::format("Burstiness factor: {} ({})\n", python_float(c.burstiness),
                     arrival_distribution_name(c.burstiness));
  out += fmt::format("Maximum request concurrency: {}\n",
                     c.max_concurrency ? std::to_string(*c.max_concurrency) : "None");
  return out;
}

std::string format_failures(const std::vector<RequestOutput>& outputs) {
  std::string out;
  size_t shown = 0;
  for (const RequestOutput& o : outputs) {
    if (o.success) continue;
    if (shown == 0) out += "Failed requests during benchmark run detected (capping to 10):\n";
    if (shown == kMaxErrorsShown) break;
    out += fmt::format("Error {}: {}\n", shown++, o.error);
  }
  return out;
}

std::string format_result_block(const BenchmarkMetrics& m, double duration_s,
                                const ReportConfig& c) {
  std::string out = fmt::format("{:=^50}\n", " Serving Benchmark Result ");
  line(out, "Successful requests:", std::to_string(m.completed));
  line(out, "Failed requests:", std::to_string(m.failed));
  if (c.max_concurrency)
    line(out, "Maximum request concurrency:", std::to_string(*c.max_concurrency));
  if (!std::isinf(c.request_rate)) line(out, "Request rate configured (RPS):", c.request_rate);
  line(out, "Benchmark duration (s):", duration_s);
  line(out, "Total input tokens:", std::to_string(m.total_input));
  line(out, "Total generated tokens:", std::to_string(m.total_output));
  line(out, "Request throughput (req/s):", m.request_throughput);
  line(out, "Output token throughput (tok/s):", m.output_throughput);
  line(out, "Peak output token throughput (tok/s):", m.max_output_tokens_per_s);
  line(out, "Peak concurrent requests:", double(m.max_concurrent_requests));
  line(out, "Total token throughput (tok/s):", m.total_token_throughput);
  for (const MetricInfo& info : kMetrics) {
    if (!selected(c, info.key)) continue;
    const MetricStats& s = m.*info.stats;
    out += fmt::format("{:-^50}\n", info.header);
    line(out, fmt::format("Mean {} (ms):", info.name), s.mean_ms);
    line(out, fmt::format("Median {} (ms):", info.name), s.median_ms);
    for (const auto& [p, value] : s.percentiles_ms) {
      line(out, fmt::format("P{} {} (ms):", percentile_word(p), info.name), value);
    }
  }
  out += std::string(50, '=') + "\n";
  return out;
}

nlohmann::ordered_json result_json(const BenchmarkMetrics& m,
                                   const std::vector<RequestOutput>& outputs, double duration_s,
                                   const ReportConfig& c) {
  nlohmann::ordered_json j;
  j["date"] = c.date;
  j["endpoint_type"] = c.backend;
  j["backend"] = c.backend;
  j["label"] = c.label ? nlohmann::ordered_json(*c.label) : nlohmann::ordered_json(nullptr);
  j["model_id"] = c.model_id;
  j["tokenizer_id"] = c.tokenizer_id;
  j["num_prompts"] = c.num_prompts;
  for (const auto& [key, value] : c.metadata) j[key] = value;
  j["request_rate"] = number_or_inf(c.request_rate);
  j["burstiness"] = number_or_inf(c.burstiness);
  j["max_concurrency"] = c.max_concurrency ? nlohmann::ordered_json(*c.max_concurrency)
                                           : nlohmann::ordered_json(nullptr);
  j["duration"] = duration_s;
  j["completed"] = m.completed;
  j["failed"] = m.failed;
  j["total_input_tokens"] = m.total_input;
  j["total_output_tokens"] = m.total_output;
  j["request_throughput"] = m.request_throughput;
  j["request_goodput"] = nullptr;
  j["output_throughput"] = m.output_throughput;
  j["total_token_throughput"] = m.total_token_throughput;
  if (c.detail == ResultDetail::kDetailed) {
    auto& input_lens = j["input_lens"] = nlohmann::ordered_json::array();
    auto& ttfts = j["ttfts"] = nlohmann::ordered_json::array();
    auto& itls = j["itls"] = nlohmann::ordered_json::array();
    auto& latencies = j["latencies"] = nlohmann::ordered_json::array();
    auto& start_times = j["start_times"] = nlohmann::ordered_json::array();
    auto& texts = j["generated_texts"] = nlohmann::ordered_json::array();
    auto& errors = j["errors"] = nlohmann::ordered_json::array();
    for (const RequestOutput& o : outputs) {
      input_lens.push_back(o.prompt_len);
      ttfts.push_back(o.ttft);
      itls.push_back(o.itl);
      latencies.push_back(o.latency);
      start_times.push_back(o.start_time);
      texts.push_back(o.generated_text);
      errors.push_back(o.error);
    }
    j["output_lens"] = m.output_lens;
  }
  auto& queue_times = j["queue_times"] = nlohmann::ordered_json::array();
  for (const RequestOutput& o : outputs) queue_times.push_back(o.start_time - o.arrival_time);
  j["max_output_tokens_per_s"] = m.max_output_tokens_per_s;
  j["max_concurrent_requests"] = m.max_concurrent_requests;
  j["rtfx"] = 0.0;
  for (const MetricInfo& info : kMetrics) {
    if (!selected(c, info.key)) continue;
    const MetricStats& s = m.*info.stats;
    j[fmt::format("mean_{}_ms", info.key)] = s.mean_ms;
    j[fmt::format("median_{}_ms", info.key)] = s.median_ms;
    j[fmt::format("std_{}_ms", info.key)] = s.std_ms;
    for (const auto& [p, value] : s.percentiles_ms) {
      j[fmt::format("p{}_{}_ms", percentile_word(p), info.key)] = value;
    }
  }
  auto& records = j["requests"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < outputs.size(); ++i) {
    records.push_back(
        request_record(i, outputs[i], i < m.output_lens.size() ? m.output_lens[i] : 0));
  }
  return j;
}

}  // namespace tandem::bench
