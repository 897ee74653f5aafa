// LlmEngine end to end on stories260K: greedy outputs through the engine equal single-sequence
// greedy decoding (the golden greedy_ids from transformers) for 32 concurrent requests, with
// prefix caching on and off, a KV pool small enough to force preemption and a token budget
// small enough to force chunked prefill; plus stops, aborts, errors, logprobs, seeded sampling,
// shutdown and stats. Also the flat ForwardBatch the model runner builds.
#include "engine/llm_engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "core/error.h"
#include "core/json_file.h"
#include "engine/model_runner.h"
#include "test_support.h"

namespace tandem {
namespace {

using namespace std::chrono_literals;

// ---- build_forward_batch ------------------------------------------------------------------

std::unique_ptr<Sequence> fake_seq(const std::string& id, std::vector<int32_t> tokens,
                                   std::vector<int32_t> table, int num_computed) {
  EngineRequest req;
  req.request_id = id;
  req.prompt_ids = std::move(tokens);
  auto seq = std::make_unique<Sequence>(std::move(req), nullptr, /*max_model_len=*/100);
  seq->blocks.table = std::move(table);
  seq->num_computed_tokens = num_computed;
  return seq;
}

TEST(ForwardBatch, FlattensPrefillChunkAndDecodeRows) {
  // Block size 4. "a": a 6-token prompt from scratch; "b": a decode at position 9 (10 tokens,
  // 9 computed); "c": a middle chunk of positions 4..6 (not sampling).
  auto a = fake_seq("a", {11, 12, 13, 14, 15, 16}, {7, 3}, 0);
  auto b = fake_seq("b", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {0, 5, 9}, 9);
  auto c = fake_seq("c", {21, 22, 23, 24, 25, 26, 27, 28, 29}, {2, 4, 6}, 4);
  SchedulerOutput out;
  out.seqs = {{a.get(), 6, true}, {b.get(), 1, true}, {c.get(), 3, false}};
  ForwardBatch fb = build_forward_batch(out, /*block_size=*/4);
  EXPECT_EQ(fb.token_ids, (std::vector<int32_t>{11, 12, 13, 14, 15, 16, 10, 25, 26, 27}));
  EXPECT_EQ(fb.positions, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 9, 4, 5, 6}));
  EXPECT_EQ(fb.slot_mapping, (std::vector<int64_t>{28, 29, 30, 31, 12, 13, 37, 16, 17, 18}));
  EXPECT_EQ(fb.query_start, (std::vector<int32_t>{0, 6, 7, 10}));
  EXPECT_EQ(fb.context_lens, (std::vector<int32_t>{6, 10, 7}));
  EXPECT_EQ(fb.max_blocks_per_seq, 3);
  EXPECT_EQ(fb.block_tables, (std::vector<int32_t>{7, 3, 0, 0, 5, 9, 2, 4, 6}));
  EXPECT_EQ(fb.logits_indices, (std::vector<int32_t>{5, 6}));
}

// ---- the engine on stories260K ---------------------------------------------------------------

struct GoldenCase {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> greedy_ids;
};

const std::vector<GoldenCase>& golden_cases() {
  static const std::vector<GoldenCase> cases = [] {
    auto j = read_json_file(test::shared_dir() / "golden" / "logits" / "stories260K.json");
    std::vector<GoldenCase> out;
    for (const auto& c : j.at("cases")) {
      out.push_back({c.at("prompt_ids").get<std::vector<int32_t>>(),
                     c.at("greedy_ids").get<std::vector<int32_t>>()});
    }
    return out;
  }();
  return cases;
}

EngineConfig base_config() {
  EngineConfig c;
  c.model_dir = test::golden_model("stories260K");
  c.num_threads = 2;
  c.kv_cache_memory_bytes = 8 << 20;
  return c;
}

uint64_t kv_bytes_for_blocks(int num_blocks, int block_size) {
  // stories260K: 5 layers x 4 KV heads x head_dim 8, K and V, f32.
  return uint64_t(num_blocks) * uint64_t(block_size) * 2 * 5 * 4 * 8 * 4;
}

struct Collected {
  std::vector<int32_t> tokens;
  std::vector<TokenLogprob> logprobs;
  FinishReason finish = FinishReason::kNone;
  std::string error;
  int num_outputs = 0;
  int num_cached_tokens = 0;
  std::optional<RequestTimes> times;
};

Collected collect(RequestStream& stream) {
  Collected c;
  while (c.finish == FinishReason::kNone) {
    auto out = stream.pop(30s);
    if (!out) {
      ADD_FAILURE() << "no output within 30 s";
      break;
    }
    c.tokens.insert(c.tokens.end(), out->new_token_ids.begin(), out->new_token_ids.end());
    c.logprobs.insert(c.logprobs.end(), out->logprobs.begin(), out->logprobs.end());
    c.finish = out->finish;
    c.error = out->error;
    c.num_cached_tokens = out->num_cached_tokens;
    c.times = out->times;
    ++c.num_outputs;
  }
  return c;
}

EngineRequest greedy_request(const std::string& id, std::vector<int32_t> prompt, int max_tokens) {
  EngineRequest r;
  r.request_id = id;
  r.prompt_ids = std::move(prompt);
  r.params.temperature = 0.0f;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;  // the golden run generated a fixed number of tokens
  return r;
}

// 32 requests: each golden case continued from 8 different points of its own greedy output, so
// prompts have different lengths and share prefixes; the expected output is the rest of the
// golden greedy sequence.
struct Workload {
  std::vector<EngineRequest> requests;
  std::map<std::string, std::vector<int32_t>> expected;
};

Workload golden_workload() {
  Workload w;
  const auto& cases = golden_cases();
  for (int split : {0, 1, 5, 9, 17, 26, 40, 52}) {  // shortest prompts first
    for (size_t c = 0; c < cases.size(); ++c) {
      const auto& g = cases[c];
      std::vector<int32_t> prompt = g.prompt_ids;
      prompt.insert(prompt.end(), g.greedy_ids.begin(), g.greedy_ids.begin() + split);
      std::string id = fmt::format("case{}-split{}", c, split);
      int max_tokens = int(g.greedy_ids.size()) - split;
      w.requests.push_back(greedy_request(id, std::move(prompt), max_tokens));
      w.expected[id].assign(g.greedy_ids.begin() + split, g.greedy_ids.end());
    }
  }
  return w;
}

struct RunResult {
  std::map<std::string, Collected> outputs;
  EngineStats stats;
};

// Runs `requests` to completion. The first `first_wave` (default: all) are queued before the
// engine starts, so they arrive together; the rest once the engine has generated a token
// (blocks are cached once computed, so only later arrivals can hit the prefix cache).
RunResult run_all(const EngineConfig& config, std::vector<EngineRequest> requests,
                  size_t first_wave = SIZE_MAX) {
  LlmEngine engine(config);
  std::vector<std::pair<std::string, std::shared_ptr<RequestStream>>> streams;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (i == first_wave) {
      engine.start();
      for (int k = 0; k < 3000 && engine.stats().generation_tokens == 0; ++k) {
        std::this_thread::sleep_for(1ms);
      }
    }
    auto stream = std::make_shared<RequestStream>();
    streams.emplace_back(requests[i].request_id, stream);
    engine.add_request(std::move(requests[i]), stream);
  }
  if (first_wave >= requests.size()) engine.start();
  RunResult result;
  for (auto& [id, stream] : streams) result.outputs[id] = collect(*stream);
  // The stats are published after the step that finished the last request.
  for (int i = 0; i < 100 && engine.stats().num_running + engine.stats().num_waiting > 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  result.stats = engine.stats();
  engine.stop();
  return result;
}

void expect_golden(const EngineConfig& config, const std::string& label,
                   const std::function<void(const EngineStats&)>& check_stats,
                   size_t first_wave = SIZE_MAX) {
  SCOPED_TRACE(label);
  Workload w = golden_workload();
  RunResult r = run_all(config, w.requests, first_wave);
  uint64_t generated = 0, longest = 0;
  for (const auto& [id, expected] : w.expected) {
    const Collected& c = r.outputs[id];
    EXPECT_EQ(c.finish, FinishReason::kLength) << id << " " << c.error;
    EXPECT_EQ(c.tokens, expected) << id;
    generated += expected.size();
    longest = std::max<uint64_t>(longest, expected.size());
  }
  // One token per sequence and step at most; the forward pass is part of the step's time.
  EXPECT_GE(r.stats.steps, longest);
  EXPECT_GT(r.stats.forward_seconds, 0.0);
  EXPECT_LE(r.stats.forward_seconds, r.stats.step_seconds);
  EXPECT_EQ(r.stats.kv_blocks_used, 0);
  EXPECT_EQ(r.stats.num_running, 0);
  EXPECT_EQ(r.stats.num_waiting, 0);
  EXPECT_EQ(r.stats.generation_tokens, generated);
  check_stats(r.stats);
}

TEST(LlmEngine, SingleGreedyRequestMatchesGolden) {
  const auto& g = golden_cases()[0];
  RunResult r = run_all(base_config(), {greedy_request("one", g.prompt_ids, 64)});
  const Collected& c = r.outputs["one"];
  EXPECT_EQ(c.tokens, g.greedy_ids);
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(c.num_outputs, 64);  // one output per token, the last one carries the finish
  ASSERT_TRUE(c.times.has_value());
  EXPECT_TRUE(c.times->first_scheduled && c.times->first_token && c.times->last_token);
  EXPECT_LE(*c.times->first_token, *c.times->last_token);
  EXPECT_EQ(r.stats.prompt_tokens, g.prompt_ids.size());
}

TEST(LlmEngine, ConcurrentGreedyRequestsMatchGoldenWithAndWithoutPrefixCaching) {
  for (bool prefix : {true, false}) {
    EngineConfig c = base_config();
    c.enable_prefix_caching = prefix;
    c.block_size = 4;
    auto check = [&](const EngineStats& s) {
      EXPECT_EQ(s.prefix_cache_hits > 0, prefix);
      EXPECT_EQ(s.num_preemptions, 0u);
    };
    // 32 at once, then 8 first and 24 while those run (which hit the cached prefixes).
    expect_golden(c, prefix ? "all at once, prefix caching on" : "all at once, off",
                  [](const EngineStats& s) { EXPECT_EQ(s.num_preemptions, 0u); });
    expect_golden(c, prefix ? "two waves, prefix caching on" : "two waves, off", check,
                  /*first_wave=*/8);
  }
}

TEST(LlmEngine, TinyKvPoolForcesPreemptionWithoutChangingATokenBlock) {
  for (bool prefix : {true, false}) {
    EngineConfig c = base_config();
    c.enable_prefix_caching = prefix;
    c.block_size = 4;
    // The longest request reaches 12 + 64 - 1 = 75 KV tokens = 19 blocks; 22 blocks hold one
    // such request and a bit, far from the 32 running at once.
    c.kv_cache_memory_bytes = kv_bytes_for_blocks(22, 4);
    expect_golden(c, prefix ? "tiny KV, prefix caching on" : "tiny KV, prefix caching off",
                  [](const EngineStats& s) {
                    EXPECT_EQ(s.kv_blocks_total, 22);
                    EXPECT_GT(s.num_preemptions, 0u);
                  });
  }
}

TEST(LlmEngine, TinyTokenBudgetForcesChunkedPrefill) {
  for (bool prefix : {true, false}) {
    EngineConfig c = base_config();
    c.enable_prefix_caching = prefix;
    c.block_size = 4;
    c.max_num_batched_tokens = 5;  // prompts of 5..63 tokens arrive in chunks of <= 5
    c.max_num_seqs = 6;
    expect_golden(c, prefix ? "budget 5, prefix caching on" : "budget 5, prefix caching off",
                  [](const EngineStats&) {});
  }
}

TEST(LlmEngine, PrefixCacheHitsAreReportedPerRequest) {
  const auto& g = golden_cases()[1];  // 12 prompt tokens
  EngineConfig c = base_config();
  c.block_size = 4;
  LlmEngine engine(c);
  engine.start();
  auto first = std::make_shared<RequestStream>();
  engine.add_request(greedy_request("first", g.prompt_ids, 4), first);
  Collected a = collect(*first);
  auto second = std::make_shared<RequestStream>();
  engine.add_request(greedy_request("second", g.prompt_ids, 4), second);
  Collected b = collect(*second);
  EXPECT_EQ(a.num_cached_tokens, 0);
  EXPECT_EQ(b.num_cached_tokens, 8);  // 3 full blocks, but the last prompt token is computed
  EXPECT_EQ(a.tokens, b.tokens);
  EngineStats s = engine.stats();
  EXPECT_EQ(s.prefix_cache_queries, 24u);
  EXPECT_EQ(s.prefix_cache_hits, 8u);
}

TEST(LlmEngine, StopTokenIdsAndMaxTokens) {
  const auto& g = golden_cases()[0];
  EngineRequest stop = greedy_request("stop", g.prompt_ids, 64);
  stop.params.stop_token_ids = {g.greedy_ids[3]};
  EngineRequest length = greedy_request("length", g.prompt_ids, 7);
  RunResult r = run_all(base_config(), {std::move(stop), std::move(length)});
  // The stop token itself is part of the output (as vLLM returns its id); the text layer
  // drops it from the text.
  size_t first = size_t(std::find(g.greedy_ids.begin(), g.greedy_ids.end(), g.greedy_ids[3]) -
                        g.greedy_ids.begin());
  EXPECT_EQ(r.outputs["stop"].finish, FinishReason::kStop);
  EXPECT_EQ(r.outputs["stop"].tokens,
            std::vector<int32_t>(g.greedy_ids.begin(), g.greedy_ids.begin() + first + 1));
  EXPECT_EQ(r.outputs["length"].finish, FinishReason::kLength);
  EXPECT_EQ(r.outputs["length"].tokens,
            std::vector<int32_t>(g.greedy_ids.begin(), g.greedy_ids.begin() + 7));
}

TEST(LlmEngine, UnsetMaxTokensRunsToTheContextLimit) {
  const auto& g = golden_cases()[0];
  EngineConfig c = base_config();
  c.max_model_len = 20;
  EngineRequest r = greedy_request("ctx", g.prompt_ids, 1);
  r.params.max_tokens.reset();
  RunResult out = run_all(c, {std::move(r)});
  EXPECT_EQ(out.outputs["ctx"].finish, FinishReason::kLength);
  EXPECT_EQ(out.outputs["ctx"].tokens,
            std::vector<int32_t>(g.greedy_ids.begin(), g.greedy_ids.begin() + 15));
}

TEST(LlmEngine, BadRequestsFinishWithAClearError) {
  EngineConfig c = base_config();
  c.max_model_len = 64;
  c.block_size = 4;
  c.kv_cache_memory_bytes = kv_bytes_for_blocks(8, 4);  // 32 tokens of KV
  std::vector<EngineRequest> requests;
  requests.push_back(greedy_request("too-long", std::vector<int32_t>(60, 5), 10));
  requests.push_back(greedy_request("kv", std::vector<int32_t>(20, 5), 20));
  requests.push_back(greedy_request("vocab", {1, 512}, 3));
  requests.push_back(greedy_request("empty", {}, 3));
  EngineRequest bad_params = greedy_request("params", {1, 2}, 3);
  bad_params.params.top_p = 0.0f;
  requests.push_back(std::move(bad_params));
  requests.push_back(greedy_request("fine", {1, 2}, 3));
  RunResult r = run_all(c, std::move(requests));
  auto expect_error = [&](const std::string& id, const std::string& fragment) {
    EXPECT_EQ(r.outputs[id].finish, FinishReason::kError) << id;
    EXPECT_NE(r.outputs[id].error.find(fragment), std::string::npos) << r.outputs[id].error;
    EXPECT_TRUE(r.outputs[id].tokens.empty());
  };
  expect_error("too-long", "exceeds max_model_len (64)");
  expect_error("kv", "KV blocks");
  expect_error("vocab", "token id 512 is outside the vocabulary");
  expect_error("empty", "prompt is empty");
  expect_error("params", "top_p");
  EXPECT_EQ(r.outputs["fine"].finish, FinishReason::kLength);
  EXPECT_EQ(r.outputs["fine"].tokens.size(), 3u);
}

TEST(LlmEngine, DuplicateRequestIdIsRejected) {
  LlmEngine engine(base_config());
  auto a = std::make_shared<RequestStream>(), b = std::make_shared<RequestStream>(),
       c = std::make_shared<RequestStream>();
  engine.add_request(greedy_request("same", {1, 2, 3}, 20), a);
  engine.add_request(greedy_request("same", {1, 2, 3}, 20), b);
  engine.add_request(greedy_request("same", {1, 2, 3}, 20), c);
  engine.start();
  for (auto* stream : {&b, &c}) {
    Collected dup = collect(**stream);
    EXPECT_EQ(dup.finish, FinishReason::kError);
    EXPECT_NE(dup.error.find("already in use"), std::string::npos);
  }
  EXPECT_EQ(collect(*a).finish, FinishReason::kLength);
  // Once finished, the id may be used again.
  auto d = std::make_shared<RequestStream>();
  engine.add_request(greedy_request("same", {1, 2, 3}, 2), d);
  EXPECT_EQ(collect(*d).finish, FinishReason::kLength);
}

TEST(LlmEngine, AbortFreesTheRequestWithinAStep) {
  LlmEngine engine(base_config());
  engine.start();
  auto stream = std::make_shared<RequestStream>();
  EngineRequest r = greedy_request("long", golden_cases()[0].prompt_ids, 500);
  engine.add_request(std::move(r), stream);
  auto first = stream->pop(30s);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->new_token_ids.size(), 1u);
  engine.abort_request("long");
  engine.abort_request("unknown-id");  // ignored
  Collected rest = collect(*stream);
  EXPECT_EQ(rest.finish, FinishReason::kAbort);
  EXPECT_LT(rest.tokens.size(), 499u);
  for (int i = 0; i < 100 && engine.stats().kv_blocks_used > 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
  EXPECT_EQ(engine.stats().num_running, 0);
}

// The proxy's abort of a transfer id (its client left) ends every request carrying it — running
// or still waiting — within a step, and leaves the others alone.
TEST(LlmEngine, AbortTransferEndsEveryRequestOfThatTransfer) {
  EngineConfig config = base_config();
  config.max_num_seqs = 1;  // the second request of the transfer waits
  LlmEngine engine(config);
  engine.start();
  auto with_transfer = [](EngineRequest r, const std::string& transfer_id) {
    r.kv_transfer = KvTransferParams{};
    r.kv_transfer->disagg_spec = DisaggSpec{transfer_id, std::nullopt, {}, {}};
    return r;
  };
  auto running = std::make_shared<RequestStream>();
  auto waiting = std::make_shared<RequestStream>();
  auto other = std::make_shared<RequestStream>();
  engine.add_request(with_transfer(greedy_request("a-0", golden_cases()[0].prompt_ids, 400), "t-1"),
                     running);
  ASSERT_TRUE(running->pop(30s).has_value());  // it is running
  engine.add_request(with_transfer(greedy_request("a-1", golden_cases()[0].prompt_ids, 400), "t-1"),
                     waiting);
  engine.add_request(with_transfer(greedy_request("b-0", {1, 2, 3}, 8), "t-2"), other);
  engine.abort_transfer("t-1");
  engine.abort_transfer("t-unknown");  // ignored
  Collected first = collect(*running);
  EXPECT_EQ(first.finish, FinishReason::kAbort);
  EXPECT_LT(first.tokens.size(), 399u);
  EXPECT_EQ(collect(*waiting).finish, FinishReason::kAbort);
  Collected kept = collect(*other);
  EXPECT_EQ(kept.finish, FinishReason::kLength);
  EXPECT_EQ(kept.tokens.size(), 8u);
  for (int i = 0; i < 100 && engine.stats().kv_blocks_used > 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

TEST(LlmEngine, StopAbortsLiveAndLaterRequests) {
  auto live = std::make_shared<RequestStream>();
  auto queued = std::make_shared<RequestStream>();
  {
    LlmEngine engine(base_config());
    engine.start();
    engine.add_request(greedy_request("live", golden_cases()[0].prompt_ids, 500), live);
    ASSERT_TRUE(live->pop(30s).has_value());  // it is running
    engine.stop();
    engine.add_request(greedy_request("after", {1, 2}, 5), queued);
  }
  EXPECT_EQ(collect(*live).finish, FinishReason::kAbort);
  EXPECT_EQ(collect(*queued).finish, FinishReason::kAbort);
  // Never started: queued requests are aborted by the destructor.
  auto never = std::make_shared<RequestStream>();
  { LlmEngine(base_config()).add_request(greedy_request("never", {1, 2}, 5), never); }
  EXPECT_EQ(collect(*never).finish, FinishReason::kAbort);
}

TEST(LlmEngine, LogprobsAreReturnedWhenAsked) {
  EngineRequest r = greedy_request("lp", golden_cases()[0].prompt_ids, 5);
  r.params.logprobs = 3;
  RunResult out = run_all(base_config(), {std::move(r)});
  const Collected& c = out.outputs["lp"];
  ASSERT_EQ(c.logprobs.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(c.logprobs[i].token, c.tokens[i]);
    EXPECT_LE(c.logprobs[i].logprob, 0.0f);
    ASSERT_EQ(c.logprobs[i].top.size(), 3u);
    EXPECT_EQ(c.logprobs[i].top[0].first, c.tokens[i]);  // greedy: the sampled token is top-1
    EXPECT_FLOAT_EQ(c.logprobs[i].top[0].second, c.logprobs[i].logprob);
  }
}

TEST(LlmEngine, SeededSamplingDoesNotDependOnBatching) {
  auto requests = [] {
    std::vector<EngineRequest> rs;
    for (int i = 0; i < 6; ++i) {
      const auto& prompt = golden_cases()[size_t(i) % 4].prompt_ids;
      EngineRequest r = greedy_request(fmt::format("s{}", i), prompt, 24);
      r.params.temperature = 1.0f;
      r.params.top_p = 0.9f;
      r.params.seed = 1000 + i;
      rs.push_back(std::move(r));
    }
    return rs;
  };
  EngineConfig one_at_a_time = base_config();
  one_at_a_time.max_num_seqs = 1;
  RunResult a = run_all(one_at_a_time, requests());
  RunResult b = run_all(base_config(), requests());
  for (const auto& [id, c] : a.outputs) {
    EXPECT_EQ(c.tokens.size(), 24u);
    EXPECT_EQ(c.tokens, b.outputs[id].tokens) << id;
  }
}

// The decoder's side of a first token handed over by the prefiller: the token reaches the stream
// before the engine runs a step (here: before it even starts), and the tokens after it are the
// ones one engine generates alone, greedy and seeded (the handed-over token took one number).
TEST(LlmEngine, AHandedOverFirstTokenIsStreamedAtOnceAndContinuedAsOneEngineWould) {
  auto requests = [] {
    std::vector<EngineRequest> rs;
    for (int i = 0; i < 4; ++i) {
      EngineRequest r =
          greedy_request(fmt::format("r{}", i), golden_cases()[size_t(i)].prompt_ids, 20);
      if (i % 2 == 1) {
        r.params.temperature = 1.0f;
        r.params.top_p = 0.5f;  // often one candidate left: a number is taken anyway
        r.params.seed = 77 + i;
      }
      rs.push_back(std::move(r));
    }
    return rs;
  };
  RunResult alone = run_all(base_config(), requests());
  LlmEngine engine(base_config());
  std::vector<std::shared_ptr<RequestStream>> streams;
  std::vector<EngineRequest> rs = requests();
  for (EngineRequest& r : rs) {
    const std::vector<int32_t>& expected = alone.outputs[r.request_id].tokens;
    ASSERT_EQ(expected.size(), 20u);
    r.kv_transfer = KvTransferParams{.disagg_spec = std::nullopt, .first_token_id = expected[0]};
    auto stream = std::make_shared<RequestStream>();
    engine.add_request(std::move(r), stream);
    std::optional<RequestOutput> first = stream->pop(0ms);  // the engine has not started
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->new_token_ids, std::vector<int32_t>{expected[0]});
    EXPECT_EQ(first->finish, FinishReason::kNone);
    streams.push_back(stream);
  }
  engine.start();
  for (size_t i = 0; i < streams.size(); ++i) {
    const std::string id = fmt::format("r{}", i);
    Collected rest = collect(*streams[i]);
    EXPECT_EQ(rest.finish, FinishReason::kLength) << id << " " << rest.error;
    std::vector<int32_t> tokens{alone.outputs[id].tokens[0]};
    tokens.insert(tokens.end(), rest.tokens.begin(), rest.tokens.end());
    EXPECT_EQ(tokens, alone.outputs[id].tokens) << id;
  }
  for (int i = 0; i < 100 && engine.stats().num_running > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(engine.stats().generation_tokens, 80u);
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

// A handed-over token that ends the request (max_tokens 1, a stop token) finishes it without a
// step; one outside the vocabulary is an error after it.
TEST(LlmEngine, AHandedOverFirstTokenCanFinishTheRequest) {
  const auto& g = golden_cases()[0];
  LlmEngine engine(base_config());
  engine.start();
  auto run = [&](EngineRequest r, int32_t token) {
    r.kv_transfer = KvTransferParams{.disagg_spec = std::nullopt, .first_token_id = token};
    auto stream = std::make_shared<RequestStream>();
    engine.add_request(std::move(r), stream);
    return collect(*stream);
  };
  Collected one = run(greedy_request("one", g.prompt_ids, 1), g.greedy_ids[0]);
  EXPECT_EQ(one.finish, FinishReason::kLength);
  EXPECT_EQ(one.tokens, std::vector<int32_t>{g.greedy_ids[0]});
  EngineRequest stop = greedy_request("stop", g.prompt_ids, 10);
  stop.params.stop_token_ids = {g.greedy_ids[0]};
  Collected stopped = run(std::move(stop), g.greedy_ids[0]);
  EXPECT_EQ(stopped.finish, FinishReason::kStop);
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>{g.greedy_ids[0]});
  EXPECT_EQ(engine.stats().steps, 0u);  // neither ran the model
  Collected bad = run(greedy_request("bad", g.prompt_ids, 10), 1 << 20);
  EXPECT_EQ(bad.finish, FinishReason::kError);
  EXPECT_NE(bad.error.find("first token id 1048576 is outside the vocabulary"), std::string::npos)
      << bad.error;
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

TEST(LlmEngine, BadConfigIsAClearError) {
  EngineConfig c = base_config();
  c.max_model_len = 100000;
  EXPECT_THROW({ LlmEngine e(c); }, Error);
  c = base_config();
  c.kv_cache_memory_bytes = 100;
  try {
    LlmEngine e(c);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("smaller than one KV block"), std::string::npos);
  }
  c = base_config();
  c.model_dir = "/nonexistent/model";
  EXPECT_THROW({ LlmEngine e(c); }, Error);
  c = base_config();
  c.device = Device::kCuda;
  EXPECT_THROW({ LlmEngine e(c); }, Error);
  c = base_config();
  c.max_num_batched_tokens = 0;
  EXPECT_THROW({ LlmEngine e(c); }, Error);
}

}  // namespace
}  // namespace tandem
