// The `tandem:` metrics: registration (names, help, vLLM's bucket bounds) and updates.
#include "server/server_metrics.h"

namespace tandem {
namespace {

// vLLM's bucket bounds, with sub-10 ms buckets added where a CPU toy model lands.
const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                          0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                          20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
const std::vector<double> kItlBuckets = {0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,
                                         0.15,  0.2,   0.3,  0.4,   0.5,  0.75,  1.0,
                                         2.5,   5.0,   7.5,  10.0,  20.0, 40.0,  80.0};
const std::vector<double> kLatencyBuckets = {0.01, 0.1,   0.3,   0.5,   0.8,   1.0,    1.5,   2.0,
                                             2.5,  5.0,   10.0,  15.0,  20.0,  30.0,   40.0,  50.0,
                                             60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
const std::vector<double> kTokenCountBuckets = {1,   2,    5,    10,   20,    50,    100,   200,
                                                500, 1000, 2000, 5000, 10000, 20000, 50000, 100000};

}  // namespace

ServerMetrics::ServerMetrics(std::string model_name)
    : labels_{{"model_name", std::move(model_name)}},
      running_(registry_.add("tandem:num_requests_running",
                             "Number of requests in model execution batches.", MetricType::kGauge)),
      waiting_(registry_.add("tandem:num_requests_waiting",
                             "Number of requests waiting to be "
                             "processed.",
                             MetricType::kGauge)),
      blocks_used_(
          registry_.add("tandem:kv_blocks_used", "KV-cache blocks in use.", MetricType::kGauge)),
      blocks_total_(registry_.add("tandem:kv_blocks_total", "KV-cache blocks in the pool.",
                                  MetricType::kGauge)),
      cache_usage_(registry_.add("tandem:kv_cache_usage_perc",
                                 "KV-cache usage. 1 means 100 percent usage.", MetricType::kGauge)),
      prefix_queries_(registry_.add("tandem:prefix_cache_queries_total",
                                    "Prefix cache queries, in terms of number of queried tokens.",
                                    MetricType::kCounter)),
      prefix_hits_(registry_.add("tandem:prefix_cache_hits_total",
                                 "Prefix cache hits, in terms of number of cached tokens.",
                                 MetricType::kCounter)),
      prompt_tokens_(registry_.add("tandem:prompt_tokens_total",
                                   "Number of prefill tokens "
                                   "processed.",
                                   MetricType::kCounter)),
      generation_tokens_(registry_.add("tandem:generation_tokens_total",
                                       "Number of generation tokens processed.",
                                       MetricType::kCounter)),
      preemptions_(registry_.add("tandem:num_preemptions_total",
                                 "Cumulative number of preemptions from the engine.",
                                 MetricType::kCounter)),
      request_success_(registry_.add("tandem:request_success_total",
                                     "Count of finished requests by finish reason.",
                                     MetricType::kCounter)),
      engine_steps_(registry_.add("tandem:engine_steps_total", "Engine steps that ran the model.",
                                  MetricType::kCounter)),
      engine_step_seconds_(
          registry_.add("tandem:engine_step_seconds_total",
                        "Wall time of those steps: scheduling, forward pass, sampling, outputs.",
                        MetricType::kCounter)),
      model_forward_seconds_(registry_.add(
          "tandem:model_forward_seconds_total",
          "Of the steps' wall time, the forward pass and sampling.", MetricType::kCounter)),
      model_device_seconds_(registry_.add(
          "tandem:model_device_seconds_total",
          "The GPU's span of those forward passes, first kernel to last copy (0 on the CPU).",
          MetricType::kCounter)),
      pd_received_tokens_(
          registry_.add("tandem:pd_prompt_tokens_received_total",
                        "Prompt tokens whose KV was loaded from transferred chunks (decoder).",
                        MetricType::kCounter)),
      pd_computed_tokens_(registry_.add("tandem:pd_prompt_tokens_computed_total",
                                        "Prompt tokens the engine computed itself.",
                                        MetricType::kCounter)),
      pd_buffer_bytes_(registry_.add("tandem:pd_buffer_bytes_used",
                                     "Bytes of the KV transfer buffer held (decoder).",
                                     MetricType::kGauge)),
      pd_transfers_received_(registry_.add("tandem:pd_transfers_received_total",
                                           "KV transfers completed into this decoder.",
                                           MetricType::kCounter)),
      pd_transfers_sent_(registry_.add("tandem:pd_transfers_sent_total",
                                       "KV transfers this prefiller completed.",
                                       MetricType::kCounter)),
      pd_failures_(registry_.add("tandem:pd_transfer_failures_total",
                                 "KV transfers this prefiller aborted.", MetricType::kCounter)),
      pd_bytes_sent_(registry_.add("tandem:pd_bytes_sent_total",
                                   "KV bytes this prefiller wrote into decoders' buffers.",
                                   MetricType::kCounter)),
      pd_transfer_seconds_(
          registry_.add("tandem:pd_transfer_seconds_total",
                        "Seconds this prefiller's completed KV transfers took, summed: from "
                        "the AllocRequest to the TransferDone.",
                        MetricType::kCounter)),
      pd_write_seconds_(registry_.add("tandem:pd_transfer_write_seconds_total",
                                      "Seconds of those transfers spent writing KV (first put "
                                      "to flush done), summed.",
                                      MetricType::kCounter)),
      tier_lookups_(registry_.add("tandem:kv_tier_lookups_total",
                                  "KV chunk keys looked up in the tier.", MetricType::kCounter)),
      tier_hit_tokens_(registry_.add("tandem:kv_tier_hit_tokens_total",
                                     "Prompt tokens whose KV was loaded from the tier.",
                                     MetricType::kCounter)),
      tier_stored_tokens_(registry_.add("tandem:kv_tier_stored_tokens_total",
                                        "Tokens of the KV chunks stored into the tier.",
                                        MetricType::kCounter)),
      tier_evictions_(registry_.add("tandem:kv_tier_evictions_total",
                                    "KV chunks evicted (LRU) to keep the tier within its size.",
                                    MetricType::kCounter)),
      tier_bytes_used_(registry_.add("tandem:kv_tier_bytes_used",
                                     "Bytes the tier holds (disk: whole chunk files).",
                                     MetricType::kGauge)),
      tier_bytes_limit_(registry_.add("tandem:kv_tier_bytes_limit",
                                      "The tier's size limit in bytes.", MetricType::kGauge)),
      tier_corrupt_(registry_.add("tandem:kv_tier_corrupt_chunks_total",
                                  "Chunk files found torn, truncated, corrupt or missing, "
                                  "deleted and recomputed.",
                                  MetricType::kCounter)),
      tier_dropped_writes_(registry_.add("tandem:kv_tier_dropped_writes_total",
                                         "KV chunks not written to the tier: its write queue was "
                                         "full.",
                                         MetricType::kCounter)),
      ttft_(registry_.add("tandem:time_to_first_token_seconds",
                          "Histogram of time to first token in seconds.", MetricType::kHistogram,
                          kTtftBuckets)),
      itl_(registry_.add("tandem:inter_token_latency_seconds",
                         "Histogram of inter-token latency in seconds.", MetricType::kHistogram,
                         kItlBuckets)),
      e2e_(registry_.add("tandem:e2e_request_latency_seconds",
                         "Histogram of end to end request latency in seconds.",
                         MetricType::kHistogram, kLatencyBuckets)),
      queue_time_(registry_.add("tandem:request_queue_time_seconds",
                                "Histogram of time spent waiting in the queue in seconds.",
                                MetricType::kHistogram, kLatencyBuckets)),
      request_prompt_tokens_(registry_.add("tandem:request_prompt_tokens",
                                           "Number of prefill tokens processed per request.",
                                           MetricType::kHistogram, kTokenCountBuckets)),
      request_generation_tokens_(registry_.add("tandem:request_generation_tokens",
                                               "Number of generation tokens processed per request.",
                                               MetricType::kHistogram, kTokenCountBuckets)) {
  // Create every unlabelled-by-reason series now so a scrape shows them before any request.
  for (MetricFamily* f :
       {&ttft_, &itl_, &e2e_, &queue_time_, &request_prompt_tokens_, &request_generation_tokens_}) {
    f->histogram(labels_);
  }
  for (const char* reason : {"stop", "length", "abort"}) {
    Labels with_reason = labels_;
    with_reason.emplace_back("finished_reason", reason);
    request_success_.counter(with_reason);
  }
}

void ServerMetrics::observe_request(const RequestTimings& t) {
  if (t.finish == FinishReason::kNone || t.finish == FinishReason::kError) return;
  Labels with_reason = labels_;
  with_reason.emplace_back("finished_reason", finish_reason_name(t.finish));
  request_success_.counter(with_reason).inc();
  if (t.queue_time_s) queue_time_.histogram(labels_).observe(*t.queue_time_s);
  e2e_.histogram(labels_).observe(t.e2e_latency_s);
  request_prompt_tokens_.histogram(labels_).observe(t.prompt_tokens);
  request_generation_tokens_.histogram(labels_).observe(t.generation_tokens);
  if (t.generation_tokens > 0) ttft_.histogram(labels_).observe(t.time_to_first_token_s);
  Histogram& itl = itl_.histogram(labels_);
  for (double gap : t.inter_token_s) itl.observe(gap);
}

std::string ServerMetrics::render(const EngineStats& s) {
  running_.gauge(labels_).set(s.num_running);
  waiting_.gauge(labels_).set(s.num_waiting);
  blocks_used_.gauge(labels_).set(s.kv_blocks_used);
  blocks_total_.gauge(labels_).set(s.kv_blocks_total);
  cache_usage_.gauge(labels_).set(
      s.kv_blocks_total > 0 ? double(s.kv_blocks_used) / s.kv_blocks_total : 0.0);
  prefix_queries_.counter(labels_).set_total(double(s.prefix_cache_queries));
  prefix_hits_.counter(labels_).set_total(double(s.prefix_cache_hits));
  prompt_tokens_.counter(labels_).set_total(double(s.prompt_tokens));
  generation_tokens_.counter(labels_).set_total(double(s.generation_tokens));
  preemptions_.counter(labels_).set_total(double(s.num_preemptions));
  engine_steps_.counter(labels_).set_total(double(s.steps));
  engine_step_seconds_.counter(labels_).set_total(s.step_seconds);
  model_forward_seconds_.counter(labels_).set_total(s.forward_seconds);
  model_device_seconds_.counter(labels_).set_total(s.device_seconds);
  const KvConnectorStats& kv = s.kv_transfer;
  pd_received_tokens_.counter(labels_).set_total(double(kv.prompt_tokens_received));
  pd_computed_tokens_.counter(labels_).set_total(double(s.prompt_tokens_computed));
  pd_buffer_bytes_.gauge(labels_).set(double(kv.buffer_bytes_used));
  pd_transfers_received_.counter(labels_).set_total(double(kv.transfers_received));
  pd_transfers_sent_.counter(labels_).set_total(double(kv.transfers_sent));
  pd_failures_.counter(labels_).set_total(double(kv.transfer_failures));
  pd_bytes_sent_.counter(labels_).set_total(double(kv.bytes_sent));
  pd_transfer_seconds_.counter(labels_).set_total(kv.transfer_seconds);
  pd_write_seconds_.counter(labels_).set_total(kv.write_seconds);
  if (kv.tiers.cpu_enabled) render_tier("cpu", kv.tiers.cpu);
  if (kv.tiers.disk_enabled) render_tier("disk", kv.tiers.disk);
  return registry_.render();
}

void ServerMetrics::render_tier(const char* tier, const ChunkTierStats& s) {
  Labels l = labels_;
  l.emplace_back("tier", tier);
  tier_lookups_.counter(l).set_total(double(s.lookups));
  tier_hit_tokens_.counter(l).set_total(double(s.hit_tokens));
  tier_stored_tokens_.counter(l).set_total(double(s.stored_tokens));
  tier_evictions_.counter(l).set_total(double(s.evictions));
  tier_bytes_used_.gauge(l).set(double(s.bytes_used));
  tier_bytes_limit_.gauge(l).set(double(s.bytes_limit));
  tier_corrupt_.counter(l).set_total(double(s.corrupt_chunks));
  tier_dropped_writes_.counter(l).set_total(double(s.dropped_writes));
}

}  // namespace tandem
