// The Prometheus registry and the tandem: metric set: exposition text, labels, histograms.
#include "server/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "core/error.h"
#include "server/server_metrics.h"

namespace tandem {
namespace {

using ::testing::HasSubstr;

TEST(Metrics, RendersCountersAndGaugesWithHelpTypeAndLabels) {
  MetricsRegistry registry;
  MetricFamily& requests = registry.add("tandem:requests_total", "Requests.", MetricType::kCounter);
  MetricFamily& running = registry.add("tandem:running", "Running.", MetricType::kGauge);
  requests.counter({{"model_name", "m\"1"}}).inc(3);
  running.gauge({}).set(2.5);
  running.gauge({}).add(-1);
  std::string text = registry.render();
  EXPECT_EQ(text,
            "# HELP tandem:requests_total Requests.\n"
            "# TYPE tandem:requests_total counter\n"
            "tandem:requests_total{model_name=\"m\\\"1\"} 3\n"
            "# HELP tandem:running Running.\n"
            "# TYPE tandem:running gauge\n"
            "tandem:running 1.5\n");
}

TEST(Metrics, HistogramBucketsAreCumulativeWithInclusiveUpperBounds) {
  MetricsRegistry registry;
  Histogram& h = registry.add("lat_seconds", "Latency.", MetricType::kHistogram, {0.1, 1.0})
                     .histogram({{"model_name", "m"}});
  for (double v : {0.05, 0.1, 0.5, 2.0}) h.observe(v);
  std::string text = registry.render();
  EXPECT_THAT(text, HasSubstr("lat_seconds_bucket{model_name=\"m\",le=\"0.1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("lat_seconds_bucket{model_name=\"m\",le=\"1\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("lat_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("lat_seconds_sum{model_name=\"m\"} 2.65\n"));
  EXPECT_THAT(text, HasSubstr("lat_seconds_count{model_name=\"m\"} 4\n"));
}

TEST(Metrics, CountersNeverDecrease) {
  Counter c;
  c.set_total(10);
  c.set_total(7);
  EXPECT_EQ(c.value(), 10);
  EXPECT_THROW(c.inc(-1), Error);
}

TEST(Metrics, RejectsBadNamesDuplicatesAndWrongTypes) {
  MetricsRegistry registry;
  EXPECT_THROW(registry.add("1abc", "x", MetricType::kGauge), Error);
  EXPECT_THROW(registry.add("a-b", "x", MetricType::kGauge), Error);
  MetricFamily& g = registry.add("ok", "x", MetricType::kGauge);
  EXPECT_THROW(registry.add("ok", "x", MetricType::kGauge), Error);
  EXPECT_THROW(g.counter({}), Error);
  EXPECT_THROW(registry.add("h", "x", MetricType::kHistogram, {1.0, 0.5}), Error);
}

TEST(Metrics, ConcurrentUpdatesAreNotLost) {
  MetricsRegistry registry;
  Counter& c = registry.add("c_total", "x", MetricType::kCounter).counter({});
  Histogram& h = registry.add("h", "x", MetricType::kHistogram, {1.0}).histogram({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        c.inc();
        h.observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 4000);
  EXPECT_EQ(h.snapshot().count, 4000u);
}

TEST(ServerMetrics, ExportsEngineStatsAndRequestHistograms) {
  ServerMetrics metrics("stories");
  EngineStats stats;
  stats.num_running = 3;
  stats.num_waiting = 1;
  stats.kv_blocks_total = 200;
  stats.kv_blocks_used = 50;
  stats.prefix_cache_queries = 100;
  stats.prefix_cache_hits = 40;
  stats.prompt_tokens = 123;
  stats.generation_tokens = 456;
  stats.steps = 8;
  stats.step_seconds = 0.5;
  stats.forward_seconds = 0.25;
  stats.device_seconds = 0.125;
  RequestTimings t;
  t.finish = FinishReason::kLength;
  t.time_to_first_token_s = 0.003;
  t.e2e_latency_s = 0.02;
  t.queue_time_s = 0.001;
  t.inter_token_s = {0.002, 0.004};
  t.prompt_tokens = 7;
  t.generation_tokens = 3;
  metrics.observe_request(t);
  std::string text = metrics.render(stats);
  const std::string l = "{model_name=\"stories\"}";
  EXPECT_THAT(text, HasSubstr("tandem:num_requests_running" + l + " 3\n"));
  EXPECT_THAT(text, HasSubstr("tandem:num_requests_waiting" + l + " 1\n"));
  EXPECT_THAT(text, HasSubstr("tandem:kv_blocks_used" + l + " 50\n"));
  EXPECT_THAT(text, HasSubstr("tandem:kv_blocks_total" + l + " 200\n"));
  EXPECT_THAT(text, HasSubstr("tandem:kv_cache_usage_perc" + l + " 0.25\n"));
  EXPECT_THAT(text, HasSubstr("tandem:prefix_cache_queries_total" + l + " 100\n"));
  EXPECT_THAT(text, HasSubstr("tandem:prefix_cache_hits_total" + l + " 40\n"));
  EXPECT_THAT(text, HasSubstr("tandem:prompt_tokens_total" + l + " 123\n"));
  EXPECT_THAT(text, HasSubstr("tandem:generation_tokens_total" + l + " 456\n"));
  EXPECT_THAT(text, HasSubstr("tandem:engine_steps_total" + l + " 8\n"));
  EXPECT_THAT(text, HasSubstr("tandem:engine_step_seconds_total" + l + " 0.5\n"));
  EXPECT_THAT(text, HasSubstr("tandem:model_forward_seconds_total" + l + " 0.25\n"));
  EXPECT_THAT(text, HasSubstr("tandem:model_device_seconds_total" + l + " 0.125\n"));
  EXPECT_THAT(text, HasSubstr("tandem:request_success_total{model_name=\"stories\","
                              "finished_reason=\"length\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("tandem:request_success_total{model_name=\"stories\","
                              "finished_reason=\"stop\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("tandem:time_to_first_token_seconds_count" + l + " 1\n"));
  EXPECT_THAT(text, HasSubstr("tandem:inter_token_latency_seconds_count" + l + " 2\n"));
  EXPECT_THAT(text, HasSubstr("tandem:inter_token_latency_seconds_bucket{model_name=\"stories\","
                              "le=\"0.001\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("tandem:inter_token_latency_seconds_bucket{model_name=\"stories\","
                              "le=\"0.005\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("tandem:e2e_request_latency_seconds_count" + l + " 1\n"));
  EXPECT_THAT(text, HasSubstr("tandem:request_queue_time_seconds_count" + l + " 1\n"));
  EXPECT_THAT(text, HasSubstr("tandem:request_generation_tokens_sum" + l + " 3\n"));
}

}  // namespace
}  // namespace tandem
