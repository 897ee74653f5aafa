// The Prometheus registry: metric objects, label-keyed series, and the text exposition format.
#include "server/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace tandem {
namespace {

bool valid_metric_name(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
              (i > 0 && std::isdigit(static_cast<unsigned char>(c)));
    if (!ok) return false;
  }
  return true;
}

// Prometheus label-value escaping: backslash, double quote and newline.
std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  return fmt::format("{}", v);
}

// `{a="x",b="y"}`, with `extra` (e.g. le="0.5") appended; empty when there are no labels.
std::string format_labels(const Labels& labels, const std::string& extra = {}) {
  if (labels.empty() && extra.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ",";
    out += labels[i].first + "=\"" + escape_label_value(labels[i].second) + "\"";
  }
  if (!extra.empty()) out += (labels.empty() ? "" : ",") + extra;
  return out + "}";
}

const char* type_name(MetricType type) {
  switch (type) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

void Counter::inc(double amount) {
  TANDEM_CHECK(amount >= 0, "a counter cannot decrease (inc by {})", amount);
  value_.fetch_add(amount);
}

void Counter::set_total(double total) {
  double current = value_.load();
  while (total > current && !value_.compare_exchange_weak(current, total)) {
  }
}

void Gauge::add(double amount) { value_.fetch_add(amount); }

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_.size() + 1, 0) {
  TANDEM_CHECK(std::is_sorted(upper_bounds_.begin(), upper_bounds_.end()) &&
                   std::adjacent_find(upper_bounds_.begin(), upper_bounds_.end()) ==
                       upper_bounds_.end(),
               "histogram bucket bounds must be strictly ascending");
}

void Histogram::observe(double value) {
  size_t bucket = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) -
                  upper_bounds_.begin();
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  std::lock_guard lock(mutex_);
  Snapshot s;
  s.upper_bounds = upper_bounds_;
  s.cumulative.resize(counts_.size());
  uint64_t running = 0;
  for (size_t i = 0; i < counts_.size(); ++i) s.cumulative[i] = running += counts_[i];
  s.sum = sum_;
  s.count = count_;
  return s;
}

MetricFamily::MetricFamily(std::string name, std::string help, MetricType type,
                           std::vector<double> buckets)
    : name_(std::move(name)), help_(std::move(help)), type_(type), buckets_(std::move(buckets)) {
  if (type_ == MetricType::kHistogram) Histogram check(buckets_);  // validates the bounds
}

MetricFamily::Series& MetricFamily::series(const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = series_.try_emplace(labels);
  Series& s = it->second;
  if (inserted) {
    s.labels = labels;
    if (type_ == MetricType::kCounter) s.counter = std::make_unique<Counter>();
    if (type_ == MetricType::kGauge) s.gauge = std::make_unique<Gauge>();
    if (type_ == MetricType::kHistogram) s.histogram = std::make_unique<Histogram>(buckets_);
  }
  return s;
}

Counter& MetricFamily::counter(const Labels& labels) {
  TANDEM_CHECK(type_ == MetricType::kCounter, "metric {} is not a counter", name_);
  return *series(labels).counter;
}

Gauge& MetricFamily::gauge(const Labels& labels) {
  TANDEM_CHECK(type_ == MetricType::kGauge, "metric {} is not a gauge", name_);
  return *series(labels).gauge;
}

Histogram& MetricFamily::histogram(const Labels& labels) {
  TANDEM_CHECK(type_ == MetricType::kHistogram, "metric {} is not a histogram", name_);
  return *series(labels).histogram;
}

void MetricFamily::render(std::string& out) const {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, help_, name_, type_name(type_));
  std::lock_guard lock(mutex_);
  for (const auto& [labels, s] : series_) {
    if (s.counter) out += name_ + format_labels(labels) + " " + format_value(s.counter->value());
    if (s.gauge) out += name_ + format_labels(labels) + " " + format_value(s.gauge->value());
    if (s.counter || s.gauge) {
      out += "\n";
      continue;
    }
    Histogram::Snapshot snap = s.histogram->snapshot();
    for (size_t i = 0; i < snap.cumulative.size(); ++i) {
      double bound = i < snap.upper_bounds.size() ? snap.upper_bounds[i] : INFINITY;
      std::string le = "le=\"" + format_value(bound) + "\"";
      out += fmt::format("{}_bucket{} {}\n", name_, format_labels(labels, le), snap.cumulative[i]);
    }
    out += fmt::format("{}_sum{} {}\n", name_, format_labels(labels), format_value(snap.sum));
    out += fmt::format("{}_count{} {}\n", name_, format_labels(labels), snap.count);
  }
}

MetricFamily& MetricsRegistry::add(std::string name, std::string help, MetricType type,
                                   std::vector<double> buckets) {
  TANDEM_CHECK(valid_metric_name(name), "invalid metric name '{}'", name);
  std::lock_guard lock(mutex_);
  for (const auto& f : families_) {
    TANDEM_CHECK(f->name() != name, "metric '{}' registered twice", name);
  }
  families_.push_back(
      std::make_unique<MetricFamily>(std::move(name), std::move(help), type, std::move(buckets)));
  return *families_.back();
}

std::string MetricsRegistry::render() const {
  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& f : families_) f->render(out);
  return out;
}

}  // namespace tandem
