// ResultComparison: the side-by-side table.
#include "bench/result_comparison.h"

#include <fmt/format.h>

#include <cmath>
#include <regex>
#include <vector>

namespace tandem::bench {
namespace {

struct Row {
  std::string key;    // the result JSON key
  std::string label;  // the printed block's label
  bool integer = false;
};

// The block's rows in its order; percentile rows come from the keys the results hold.
std::vector<Row> rows_of(const nlohmann::json& result) {
  std::vector<Row> rows = {
      {"completed", "Successful requests:", true},
      {"failed", "Failed requests:", true},
      {"duration", "Benchmark duration (s):"},
      {"total_input_tokens", "Total input tokens:", true},
      {"total_output_tokens", "Total generated tokens:", true},
      {"request_throughput", "Request throughput (req/s):"},
      {"output_throughput", "Output token throughput (tok/s):"},
      {"max_output_tokens_per_s", "Peak output token throughput (tok/s):"},
      {"max_concurrent_requests", "Peak concurrent requests:"},
      {"total_token_throughput", "Total token throughput (tok/s):"},
  };
  const std::regex percentile_key(R"(p([0-9.]+)_(ttft|tpot|itl|e2el)_ms)");
  for (const char* metric : {"ttft", "tpot", "itl", "e2el"}) {
    std::string name = metric;
    for (char& c : name) c = char(std::toupper(static_cast<unsigned char>(c)));
    rows.push_back({fmt::format("mean_{}_ms", metric), fmt::format("Mean {} (ms):", name)});
    rows.push_back({fmt::format("median_{}_ms", metric), fmt::format("Median {} (ms):", name)});
    for (const auto& [key, value] : result.items()) {
      std::smatch m;
      if (std::regex_match(key, m, percentile_key) && m[2] == metric) {
        rows.push_back({key, fmt::format("P{} {} (ms):", m[1].str(), name)});
      }
    }
  }
  return rows;
}

std::string cell(const nlohmann::json& v, bool integer) {
  if (!v.is_number()) return "-";
  return integer ? fmt::format("{}", v.get<int64_t>()) : fmt::format("{:.2f}", v.get<double>());
}

}  // namespace

std::string format_comparison(const nlohmann::json& first, const std::string& first_name,
                              const nlohmann::json& second, const std::string& second_name) {
  std::string out = fmt::format("{:=^80}\n", " Serving Benchmark Comparison ");
  out += fmt::format("{:<40} {:>12} {:>12} {:>12}\n", "", first_name.substr(0, 12),
                     second_name.substr(0, 12), "ratio");
  for (const Row& row : rows_of(first)) {
    if (!first.contains(row.key) || !second.contains(row.key)) continue;
    const nlohmann::json& a = first[row.key];
    const nlohmann::json& b = second[row.key];
    std::string ratio = "-";
    if (a.is_number() && b.is_number() && a.get<double>() != 0) {
      ratio = fmt::format("{:.2f}x", b.get<double>() / a.get<double>());
    }
    out += fmt::format("{:<40} {:>12} {:>12} {:>12}\n", row.label, cell(a, row.integer),
                       cell(b, row.integer), ratio);
  }
  out += std::string(80, '=') + "\n";
  return out;
}

}  // namespace tandem::bench
