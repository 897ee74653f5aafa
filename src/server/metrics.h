// A small Prometheus registry: counter, gauge and histogram families with labelled series,
// rendered in the text exposition format (version 0.0.4) that /metrics serves. Updates are
// thread-safe and cheap (atomics; a mutex only per histogram observation and per new series).
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tandem {

enum class MetricType { kCounter, kGauge, kHistogram };

// A monotonically increasing value.
class Counter {
 public:
  void inc(double amount = 1.0);
  // Mirrors a cumulative total kept elsewhere (e.g. an engine statistic); never goes down.
  void set_total(double total);
  [[nodiscard]] double value() const { return value_.load(); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down.
class Gauge {
 public:
  void set(double value) { value_.store(value); }
  void add(double amount);
  [[nodiscard]] double value() const { return value_.load(); }

 private:
  std::atomic<double> value_{0.0};
};

// Cumulative buckets (upper bounds ascending, +Inf implied), sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;     // (num_buckets) ascending, +Inf excluded
    std::vector<uint64_t> cumulative;     // (num_buckets + 1) counts <= bound; last = +Inf
    double sum = 0.0;
    uint64_t count = 0;
  };
  [[nodiscard]] Snapshot snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::vector<double> upper_bounds_;  // (num_buckets)
  std::vector<uint64_t> counts_;      // (num_buckets + 1) non-cumulative; last = above all
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

using Labels = std::vector<std::pair<std::string, std::string>>;  // (name, value), in order

// One metric name with its help text and one series per distinct label set.
class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, MetricType type,
               std::vector<double> buckets = {});

  Counter& counter(const Labels& labels);
  Gauge& gauge(const Labels& labels);
  Histogram& histogram(const Labels& labels);

  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  void render(std::string& out) const;

 private:
  struct Series {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  Series& series(const Labels& labels);

  std::string name_, help_;
  MetricType type_;
  std::vector<double> buckets_;  // histograms only
  mutable std::mutex mutex_;     // guards series_ (the metric objects are thread-safe)
  std::map<Labels, Series> series_;
};

// The set of families, rendered in registration order. Names must be unique and valid
// Prometheus names ([a-zA-Z_:][a-zA-Z0-9_:]*); violations throw tandem::Error.
class MetricsRegistry {
 public:
  MetricFamily& add(std::string name, std::string help, MetricType type,
                    std::vector<double> buckets = {});
  [[nodiscard]] std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<MetricFamily>> families_;
};

// The content type of render()'s output.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace tandem
