// SvgPlot: timeline and histogram panels drawn as SVG elements.
#include "bench/svg_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "bench/metrics.h"
#include "core/error.h"

namespace tandem::bench {
namespace {

constexpr double kWidth = 1000;
constexpr double kMarginLeft = 70, kMarginRight = 20;
constexpr double kTimelineTop = 50;
constexpr double kHistogramHeight = 220;
constexpr int kHistogramBins = 30;

// One request as the plot needs it; times in seconds from the benchmark start.
struct Span {
  bool success = false;
  std::string error;
  double arrival = 0, start = 0, first_token = 0, end = 0;
  std::vector<double> token_times;
};

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

double number(const nlohmann::json& record, const char* key) {
  auto it = record.find(key);
  TANDEM_CHECK(it != record.end() && it->is_number(), "request record has no number '{}': {}", key,
               record.dump().substr(0, 200));
  return it->get<double>();
}

Span span_from(bool success, std::string error, double arrival, double start, double ttft,
               const nlohmann::json& itl, double end) {
  Span s{success, std::move(error), arrival, start, start + ttft, end, {}};
  if (success) {
    double t = s.first_token;
    s.token_times.push_back(t);
    if (itl.is_array()) {
      for (const auto& gap : itl) s.token_times.push_back(t += gap.get<double>());
    }
  }
  return s;
}

std::vector<Span> spans_of(const nlohmann::json& result) {
  std::vector<Span> spans;
  TANDEM_CHECK(result.is_object(), "the result is not a JSON object");
  if (auto records = result.find("requests"); records != result.end() && records->is_array()) {
    for (const auto& r : *records) {
      const bool ok = r.value("success", false);
      const double end = number(r, "end_time");
      spans.push_back(span_from(ok, r.value("error", ""), number(r, "arrival_time"),
                                number(r, "start_time"), number(r, "ttft"),
                                r.value("itl", nlohmann::json::array()), end));
    }
    return spans;
  }
  for (const char* key : {"start_times", "ttfts", "itls", "latencies", "errors"}) {
    TANDEM_CHECK(result.contains(key) && result[key].is_array(),
                 "the result has no 'requests' records and no '{}' array (save it with "
                 "`tandem bench serve --save-result` or `vllm bench serve --save-detailed`)",
                 key);
  }
  const auto& starts = result["start_times"];
  double origin = starts.empty() ? 0 : starts[0].get<double>();
  for (const auto& s : starts) origin = std::min(origin, s.get<double>());
  for (size_t i = 0; i < starts.size(); ++i) {
    const double start = starts[i].get<double>() - origin;
    std::string error =
        result["errors"][i].is_string() ? result["errors"][i].get<std::string>() : "";
    const bool ok = error.empty();
    const double latency = result["latencies"][i].get<double>();
    spans.push_back(span_from(ok, std::move(error), start, start, result["ttfts"][i].get<double>(),
                              result["itls"][i], start + latency));
  }
  return spans;
}

// Round tick step (1, 2 or 5 times a power of ten) giving about `count` ticks over `range`.
double tick_step(double range, int count) {
  if (range <= 0) return 1;
  const double raw = range / count;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * power >= raw) return m * power;
  }
  return 10 * power;
}

std::string tick_label(double v) { return fmt::format("{:g}", std::round(v * 1e6) / 1e6); }

class Svg {
 public:
  void add(std::string element) { body_ += element + "\n"; }
  void text(double x, double y, const std::string& s, const char* anchor = "start", int size = 12) {
    add(fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="{}" text-anchor="{}">{}</text>)", x,
                    y, size, anchor, escape(s)));
  }
  void line(double x1, double y1, double x2, double y2, const char* color, double width) {
    add(fmt::format(R"(<line x1="{:.2f}" y1="{:.2f}" x2="{:.2f}" y2="{:.2f}" stroke="{}" )"
                    R"(stroke-width="{:.2f}"/>)",
                    x1, y1, x2, y2, color, width));
  }
  void rect(double x, double y, double w, double h, const char* color) {
    add(fmt::format(R"(<rect x="{:.2f}" y="{:.2f}" width="{:.2f}" height="{:.2f}" fill="{}"/>)", x,
                    y, std::max(w, 0.0), std::max(h, 0.0), color));
  }
  std::string document(double height) const {
    return fmt::format(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0:.0f}\" height=\"{1:.0f}\" "
        "viewBox=\"0 0 {0:.0f} {1:.0f}\" font-family=\"sans-serif\">\n"
        "<rect x=\"0\" y=\"0\" width=\"{0:.0f}\" height=\"{1:.0f}\" fill=\"white\"/>\n{2}</svg>\n",
        kWidth, height, body_);
  }

 private:
  std::string body_;
};

// The same requests with every time measured from the request's own send (queueing hidden),
// so TTFT and decode spans of requests far apart in the run line up.
std::vector<Span> aligned_at_send(std::vector<Span> spans) {
  for (Span& s : spans) {
    const double t0 = s.start;
    s.arrival = s.start = 0;
    s.first_token -= t0;
    s.end -= t0;
    for (double& t : s.token_times) t -= t0;
  }
  return spans;
}

// A timeline panel starting at `top`, one row per request; returns the y below it.
double draw_timeline(Svg& svg, const std::vector<Span>& spans, double top, const std::string& title,
                     const std::string& axis) {
  const double row = std::clamp(400.0 / double(std::max<size_t>(spans.size(), 1)), 2.0, 14.0);
  const double height = row * double(spans.size());
  const double left = kMarginLeft, width = kWidth - kMarginLeft - kMarginRight;
  double t_max = 0;
  for (const Span& s : spans) t_max = std::max({t_max, s.end, s.start});
  if (t_max <= 0) t_max = 1;
  auto x = [&](double t) { return left + t / t_max * width; };

  svg.text(kWidth / 2, top - 28, title, "middle", 16);
  const double step = tick_step(t_max, 10);
  for (double t = 0; t <= t_max + 1e-9; t += step) {
    svg.line(x(t), top, x(t), top + height, "#e0e0e0", 1);
    svg.text(x(t), top + height + 14, tick_label(t), "middle", 10);
  }
  svg.text(left + width / 2, top + height + 30, axis, "middle");
  svg.text(12, top + height / 2, "request", "middle");
  const double bar = std::max(row * 0.6, 1.0);
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& s = spans[i];
    const double y = top + row * (double(i) + 0.5);
    // A group per request whose tooltip tells its numbers (or its error).
    svg.add("<g>");
    svg.add(fmt::format("<title>{}</title>",
                        escape(s.success ? fmt::format("request {}: sent {:.3f} s, TTFT {:.1f} ms, "
                                                       "{} tokens, E2EL {:.1f} ms",
                                                       i, s.start, (s.first_token - s.start) * 1000,
                                                       s.token_times.size(),
                                                       (s.token_times.back() - s.start) * 1000)
                                         : fmt::format("request {} failed: {}", i, s.error))));
    if (s.start > s.arrival) svg.line(x(s.arrival), y, x(s.start), y, "#b0b0b0", bar * 0.5);
    if (!s.success) {
      svg.line(x(s.start), y, x(s.end), y, "#d62728", bar);
    } else {
      svg.line(x(s.start), y, x(s.first_token), y, "#ff7f0e", bar);
      svg.line(x(s.first_token), y, x(s.token_times.back()), y, "#1f77b4", bar);
      for (double t : s.token_times) svg.line(x(t), y - bar / 2, x(t), y + bar / 2, "#08306b", 0.6);
      svg.line(x(s.end), y - bar / 2 - 1, x(s.end), y + bar / 2 + 1, "#000000", 1.2);
    }
    svg.add("</g>");
  }
  // Legend.
  const double ly = top + height + 48;
  const std::pair<const char*, const char*> legend[] = {{"#b0b0b0", "client queue"},
                                                        {"#ff7f0e", "send -> first token"},
                                                        {"#1f77b4", "decoding (tick = token)"},
                                                        {"#000000", "end"},
                                                        {"#d62728", "failed"}};
  double lx = left;
  for (const auto& [color, name] : legend) {
    svg.rect(lx, ly - 9, 14, 10, color);
    svg.text(lx + 18, ly, name, "start", 11);
    lx += 180;
  }
  return ly + 20;
}

void draw_histogram(Svg& svg, double left, double top, double width, const std::string& title,
                    const std::vector<double>& values_ms) {
  const double plot_top = top + 28, plot_height = kHistogramHeight - 70;
  svg.text(left + width / 2, top + 14, title, "middle", 14);
  if (values_ms.empty()) {
    svg.text(left + width / 2, plot_top + plot_height / 2, "no values", "middle");
    return;
  }
  const auto [lo_it, hi_it] = std::minmax_element(values_ms.begin(), values_ms.end());
  double lo = *lo_it, hi = *hi_it;
  if (hi - lo < 1e-9) hi = lo + 1;
  std::vector<int> bins(kHistogramBins, 0);
  for (double v : values_ms) {
    const int b = std::min(kHistogramBins - 1, int((v - lo) / (hi - lo) * kHistogramBins));
    ++bins[size_t(b)];
  }
  const int peak = *std::max_element(bins.begin(), bins.end());
  const double bin_width = width / kHistogramBins;
  for (int b = 0; b < kHistogramBins; ++b) {
    const double h = plot_height * bins[size_t(b)] / std::max(peak, 1);
    svg.rect(left + b * bin_width + 0.5, plot_top + plot_height - h, bin_width - 1, h, "#1f77b4");
  }
  svg.line(left, plot_top + plot_height, left + width, plot_top + plot_height, "#000000", 1);
  svg.text(left, plot_top + plot_height + 14, tick_label(lo), "start", 10);
  svg.text(left + width, plot_top + plot_height + 14, tick_label(hi), "end", 10);
  svg.text(left + width / 2, plot_top + plot_height + 14, "ms", "middle", 10);
  svg.text(left, plot_top - 4, fmt::format("max bin {}", peak), "start", 10);
  const double mean =
      std::accumulate(values_ms.begin(), values_ms.end(), 0.0) / double(values_ms.size());
  svg.text(left + width / 2, plot_top + plot_height + 32,
           fmt::format("n={}  mean={:.2f}  median={:.2f}  p99={:.2f} (ms)", values_ms.size(), mean,
                       percentile(values_ms, 50), percentile(values_ms, 99)),
           "middle", 11);
}

}  // namespace

std::string render_result_svg(const nlohmann::json& result) {
  const std::vector<Span> spans = spans_of(result);
  Svg svg;
  double below = draw_timeline(svg, spans, kTimelineTop, "Per-request timeline",
                               "time since benchmark start (s)");
  below = draw_timeline(svg, aligned_at_send(spans), below + 50,
                        "The same requests, aligned at their send", "time since send (s)");
  std::vector<double> ttft_ms, itl_ms;
  for (const Span& s : spans) {
    if (!s.success) continue;
    ttft_ms.push_back((s.first_token - s.start) * 1000);
    for (size_t k = 1; k < s.token_times.size(); ++k) {
      itl_ms.push_back((s.token_times[k] - s.token_times[k - 1]) * 1000);
    }
  }
  const double half = (kWidth - kMarginLeft - kMarginRight - 40) / 2;
  draw_histogram(svg, kMarginLeft, below, half, "TTFT distribution", ttft_ms);
  draw_histogram(svg, kMarginLeft + half + 40, below, half, "ITL distribution", itl_ms);
  return svg.document(below + kHistogramHeight);
}

}  // namespace tandem::bench
