// The SVG plot: a well-formed XML document (checked by a small tag-balance parser) with two
// timelines (a row per request, a tick per token) and both histograms; vLLM's detailed arrays
// work too.
#include "bench/svg_plot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

#include "core/error.h"

namespace tandem::bench {
namespace {

using ::testing::HasSubstr;

// Returns "" when `xml` is well formed as far as tags, attributes quoting and entities go;
// otherwise what is wrong.
std::string xml_problem(const std::string& xml) {
  std::vector<std::string> open;
  size_t i = 0;
  int roots = 0;
  while (i < xml.size()) {
    if (xml[i] == '&') {
      const size_t semi = xml.find(';', i);
      if (semi == std::string::npos) return "bare &";
      const std::string entity = xml.substr(i, semi - i + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;")
        return "unknown entity " + entity;
      i = semi + 1;
      continue;
    }
    if (xml[i] == '>') return "stray >";
    if (xml[i] != '<') {
      ++i;
      continue;
    }
    const size_t end = xml.find('>', i);
    if (end == std::string::npos) return "unclosed tag";
    std::string tag = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.front() == '?') continue;  // <?xml ... ?>
    if (std::count(tag.begin(), tag.end(), '"') % 2) return "odd quotes in <" + tag + ">";
    if (tag.find('<') != std::string::npos) return "< inside a tag";
    if (tag.front() == '/') {
      if (open.empty() || open.back() != tag.substr(1))
        return "mismatched </" + tag.substr(1) + ">";
      open.pop_back();
      continue;
    }
    const bool self_closing = tag.back() == '/';
    const std::string name = tag.substr(0, tag.find_first_of(" /"));
    if (open.empty()) ++roots;
    if (!self_closing) open.push_back(name);
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  if (roots != 1) return "not one root element";
  return "";
}

nlohmann::json record(double start, double ttft, std::vector<double> itl, bool ok) {
  double latency = ttft;
  for (double g : itl) latency += g;
  return {{"success", ok},         {"error", ok ? "" : "HTTP 500 <oops> & more"},
          {"arrival_time", start}, {"start_time", start},
          {"ttft", ttft},          {"itl", itl},
          {"latency", latency},    {"end_time", start + latency + 0.001}};
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(SvgPlot, DrawsAWellFormedTimelineAndHistograms) {
  nlohmann::json result = {{"requests",
                            {record(0.0, 0.2, {0.01, 0.01, 0.01}, true),
                             record(0.5, 0.3, {0.02, 0.05}, true), record(0.7, 0.1, {}, false)}}};
  const std::string svg = render_result_svg(result);
  EXPECT_EQ(xml_problem(svg), "") << svg;
  EXPECT_THAT(svg, HasSubstr("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_THAT(svg, HasSubstr("Per-request timeline"));
  EXPECT_THAT(svg, HasSubstr("TTFT distribution"));
  EXPECT_THAT(svg, HasSubstr("ITL distribution"));
  EXPECT_THAT(svg, HasSubstr("aligned at their send"));
  // Two timelines (by benchmark time, then aligned at send), each with one tick per token
  // (4 + 3 tokens), two send -> first token bars and one failed request.
  EXPECT_EQ(count(svg, "stroke=\"#08306b\""), 2 * 7u);
  EXPECT_EQ(count(svg, "stroke=\"#ff7f0e\""), 2 * 2u);
  EXPECT_EQ(count(svg, "stroke=\"#d62728\""), 2 * 1u);
  EXPECT_THAT(svg, HasSubstr("n=5"));  // five ITLs in the histogram
  EXPECT_THAT(svg, HasSubstr("request 2 failed: HTTP 500 &lt;oops&gt; &amp; more"));
}

TEST(SvgPlot, ReadsVllmDetailedArrays) {
  nlohmann::json result = {{"start_times", {100.0, 100.5}},
                           {"ttfts", {0.2, 0.1}},
                           {"itls", {{0.01}, {0.02, 0.02}}},
                           {"latencies", {0.21, 0.14}},
                           {"errors", {"", ""}}};
  const std::string svg = render_result_svg(result);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(count(svg, "stroke=\"#08306b\""), 2 * 5u);
}

TEST(SvgPlot, EmptyRunsAndBadInput) {
  EXPECT_EQ(xml_problem(render_result_svg({{"requests", nlohmann::json::array()}})), "");
  try {
    (void)render_result_svg({{"duration", 1.0}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no 'requests' records"));
  }
  EXPECT_THROW((void)render_result_svg({{"requests", {{{"success", true}}}}}), Error);
}

TEST(SvgPlot, TheCheckerCatchesMalformedXml) {
  EXPECT_NE(xml_problem("<svg><g></svg>"), "");
  EXPECT_NE(xml_problem("<svg>a & b</svg>"), "");
  EXPECT_NE(xml_problem("<svg><text a=\"1>x</text></svg>"), "");
  EXPECT_EQ(xml_problem("<svg><g/><text>a &amp; b</text></svg>"), "");
}

}  // namespace
}  // namespace tandem::bench
