// Metrics: vLLM's calculate_metrics, including its peak-throughput buckets and the exact
// peak-concurrency sweep.
#include "bench/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace tandem::bench {

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * double(values.size() - 1);
  const size_t low = size_t(std::floor(rank));
  const size_t high = std::min(low + 1, values.size() - 1);
  return values[low] + (values[high] - values[low]) * (rank - double(low));
}

MetricStats summarize_ms(const std::vector<double>& values,
                         const std::vector<double>& percentiles) {
  MetricStats s;
  if (!values.empty()) {
    const double n = double(values.size());
    const double mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
    double sq = 0;
    for (double v : values) sq += (v - mean) * (v - mean);
    s.mean_ms = mean * 1000;
    s.std_ms = std::sqrt(sq / n) * 1000;
    s.median_ms = percentile(values, 50) * 1000;
  }
  for (double p : percentiles) s.percentiles_ms.emplace_back(p, percentile(values, p) * 1000);
  return s;
}

namespace {

// Output tokens per 1-second bucket from the first send; the busiest bucket.
double peak_tokens_per_second(const std::vector<const RequestOutput*>& ok) {
  double min_start = ok.front()->start_time, max_end = 0;
  for (const auto* o : ok) {
    min_start = std::min(min_start, o->start_time);
    max_end = std::max(max_end, o->start_time + o->latency);
  }
  const auto buckets = size_t(std::ceil(max_end - min_start)) + 1;
  std::vector<double> tokens(buckets, 0.0);
  for (const auto* o : ok) {
    double t = o->start_time + o->ttft;
    auto add = [&](double at) {
      const auto b = int64_t(at - min_start);
      if (b >= 0 && size_t(b) < buckets) tokens[size_t(b)] += 1;
    };
    add(t);
    for (double gap : o->itl) add(t += gap);
  }
  return *std::max_element(tokens.begin(), tokens.end());
}

// Most requests in flight at once, over half-open intervals [start, start + latency).
int peak_concurrency(const std::vector<const RequestOutput*>& ok) {
  std::vector<std::pair<double, int>> events;
  for (const auto* o : ok) {
    events.emplace_back(o->start_time, +1);
    events.emplace_back(o->start_time + o->latency, -1);
  }
  std::sort(events.begin(), events.end());  // at a tie, -1 (an end) sorts before +1
  int now = 0, peak = 0;
  for (const auto& e : events) peak = std::max(peak, now += e.second);
  return peak;
}

}  // namespace

BenchmarkMetrics compute_metrics(const std::vector<RequestOutput>& outputs, double duration_s,
                                 const std::vector<double>& percentiles,
                                 const TokenCounter& count_tokens) {
  BenchmarkMetrics m;
  std::vector<double> ttfts, tpots, itls, e2els;
  std::vector<const RequestOutput*> ok;
  for (const RequestOutput& o : outputs) {
    if (!o.success) {
      m.output_lens.push_back(0);
      ++m.failed;
      continue;
    }
    int output_len = o.output_tokens;
    if (output_len == 0) output_len = count_tokens ? count_tokens(o.generated_text) : 1;
    m.output_lens.push_back(output_len);
    m.total_input += o.prompt_len;
    m.total_output += output_len;
    if (output_len > 1) tpots.push_back((o.latency - o.ttft) / (output_len - 1));
    itls.insert(itls.end(), o.itl.begin(), o.itl.end());
    ttfts.push_back(o.ttft);
    e2els.push_back(o.latency);
    ok.push_back(&o);
    ++m.completed;
  }
  if (duration_s > 0) {
    m.request_throughput = m.completed / duration_s;
    m.output_throughput = double(m.total_output) / duration_s;
    m.total_token_throughput = double(m.total_input + m.total_output) / duration_s;
  }
  m.ttft = summarize_ms(ttfts, percentiles);
  m.tpot = summarize_ms(tpots, percentiles);
  m.itl = summarize_ms(itls, percentiles);
  m.e2el = summarize_ms(e2els, percentiles);
  if (!ok.empty()) {
    m.max_output_tokens_per_s = peak_tokens_per_second(ok);
    m.max_concurrent_requests = peak_concurrency(ok);
  }
  return m;
}

}  // namespace tandem::bench
