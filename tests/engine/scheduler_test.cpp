// Scheduler: token budget, max_num_seqs, chunked prefill, preemption and recompute, abort,
// admission errors, prefix reuse; plus a simulated engine whose fake KV cache checks that every
// sequence reads back exactly its own tokens through its block table, whatever the schedule.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>

#include "core/error.h"

namespace tandem {
namespace {

constexpr int kBlockSize = 4;

std::unique_ptr<Sequence> make_seq(const std::string& id, int prompt_len, int max_tokens,
                                   int first_token = 10, int max_model_len = 1000) {
  EngineRequest req;
  req.request_id = id;
  req.prompt_ids.resize(size_t(prompt_len));
  std::iota(req.prompt_ids.begin(), req.prompt_ids.end(), first_token);
  req.params.max_tokens = max_tokens;
  return std::make_unique<Sequence>(std::move(req), nullptr, max_model_len);
}

struct Harness {
  explicit Harness(int num_blocks,
                   SchedulerConfig config = {.max_num_seqs = 8,
                                             .max_num_batched_tokens = 64,
                                             .max_model_len = 1000},
                   PrefixCaching pc = PrefixCaching::kEnabled)
      : blocks({.num_blocks = num_blocks,
                .block_size = kBlockSize,
                .prefix_caching = pc,
                .model_fingerprint = "scheduler-test"}),
        scheduler(config, blocks),
        kv(size_t(num_blocks) * kBlockSize, -1) {}

  // The fake model: the next token is a function of the whole context as read from the fake KV
  // cache, which must hold exactly the sequence's tokens.
  int32_t fake_forward(const ScheduledSeq& s) {
    Sequence& seq = *s.seq;
    for (int pos = seq.num_computed_tokens; pos < seq.num_computed_tokens + s.num_new_tokens;
         ++pos) {
      kv[slot(seq, pos)] = seq.token_ids[size_t(pos)];
    }
    if (!s.samples) return -1;
    uint32_t h = 7;
    for (int pos = 0; pos < seq.num_tokens(); ++pos) {
      EXPECT_EQ(kv[slot(seq, pos)], seq.token_ids[size_t(pos)])
          << seq.request_id << " reads a wrong token at position " << pos;
      h = h * 31 + uint32_t(seq.token_ids[size_t(pos)]);
    }
    return int32_t(h % 1000);
  }
  size_t slot(const Sequence& seq, int pos) const {
    EXPECT_LT(size_t(pos / kBlockSize), seq.blocks.table.size());
    return size_t(seq.blocks.table[size_t(pos / kBlockSize)]) * kBlockSize + pos % kBlockSize;
  }

  // One engine step; returns the sequences that finished.
  std::vector<std::unique_ptr<Sequence>> step(SchedulerOutput* out_copy = nullptr) {
    SchedulerOutput out = scheduler.schedule();
    std::vector<StepToken> tokens;
    for (const auto& s : out.seqs) tokens.push_back({fake_forward(s), FinishReason::kNone});
    auto finished = scheduler.update(out, tokens);
    if (out_copy) *out_copy = out;
    return finished;
  }

  // Runs to completion; returns each request's output tokens.
  std::map<std::string, std::vector<int32_t>> run_all(int max_steps = 10000) {
    std::map<std::string, std::vector<int32_t>> outputs;
    for (int i = 0; i < max_steps && scheduler.has_work(); ++i) {
      for (auto& seq : step()) {
        EXPECT_EQ(seq->finish_reason, FinishReason::kLength);
        outputs[seq->request_id].assign(seq->output_ids().begin(), seq->output_ids().end());
      }
    }
    EXPECT_FALSE(scheduler.has_work());
    return outputs;
  }

  BlockManager blocks;
  Scheduler scheduler;
  std::vector<int32_t> kv;  // (num_blocks * block_size) the token whose KV each slot holds
};

TEST(Scheduler, RunningFirstThenNewRequestsUnderTheTokenBudget) {
  Harness h(64, {.max_num_seqs = 8, .max_num_batched_tokens = 16, .max_model_len = 1000});
  h.scheduler.add(make_seq("a", 10, 5, /*first_token=*/100));  // distinct prompts: no prefix hits
  h.scheduler.add(make_seq("b", 10, 5, /*first_token=*/200));
  h.scheduler.add(make_seq("c", 10, 5, /*first_token=*/300));
  SchedulerOutput out;
  h.step(&out);
  ASSERT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(out.seqs[0].num_new_tokens, 10);
  EXPECT_TRUE(out.seqs[0].samples);
  EXPECT_EQ(out.seqs[1].num_new_tokens, 6);  // b's prompt is chunked
  EXPECT_FALSE(out.seqs[1].samples);
  EXPECT_EQ(out.num_tokens, 16);
  h.step(&out);
  ASSERT_EQ(out.seqs.size(), 3u);
  EXPECT_EQ(out.seqs[0].seq->request_id, "a");  // decode
  EXPECT_EQ(out.seqs[0].num_new_tokens, 1);
  EXPECT_EQ(out.seqs[1].num_new_tokens, 4);  // b's last chunk
  EXPECT_TRUE(out.seqs[1].samples);
  EXPECT_EQ(out.seqs[2].num_new_tokens, 10);  // c
  EXPECT_EQ(out.num_tokens, 15);
}

TEST(Scheduler, LongPromptIsChunkedAndSamplesOnlyAtTheEnd) {
  Harness h(64, {.max_num_seqs = 8, .max_num_batched_tokens = 16, .max_model_len = 1000});
  h.scheduler.add(make_seq("long", 40, 3));
  std::vector<int> chunks;
  SchedulerOutput out;
  for (int i = 0; i < 3; ++i) {
    h.step(&out);
    ASSERT_EQ(out.seqs.size(), 1u);
    chunks.push_back(out.seqs[0].num_new_tokens);
    EXPECT_EQ(out.seqs[0].samples, i == 2);
  }
  EXPECT_EQ(chunks, (std::vector<int>{16, 16, 8}));
  auto outputs = h.run_all();
  EXPECT_EQ(outputs["long"].size(), 3u);
  EXPECT_EQ(h.blocks.num_used_blocks(), 0);
}

TEST(Scheduler, MaxNumSeqsLimitsTheRunningSet) {
  Harness h(64, {.max_num_seqs = 2, .max_num_batched_tokens = 100, .max_model_len = 1000});
  for (const char* id : {"a", "b", "c"}) h.scheduler.add(make_seq(id, 4, 3));
  SchedulerOutput out;
  h.step(&out);
  EXPECT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(h.scheduler.num_running(), 2);
  EXPECT_EQ(h.scheduler.num_waiting(), 1);
  auto outputs = h.run_all();
  EXPECT_EQ(outputs.size(), 3u);
}

TEST(Scheduler, OutputsDoNotDependOnBatchingChunkingOrPreemption) {
  auto add_requests = [](Scheduler& s) {
    for (int i = 0; i < 12; ++i) {
      s.add(make_seq(fmt::format("r{}", i), 3 + 5 * i % 23, 6 + i % 5, 10 + i % 3));
    }
  };
  Harness roomy(256, {.max_num_seqs = 1, .max_num_batched_tokens = 1000, .max_model_len = 1000},
                PrefixCaching::kDisabled);
  add_requests(roomy.scheduler);
  auto reference = roomy.run_all();  // one sequence at a time, no chunking
  ASSERT_EQ(reference.size(), 12u);

  for (PrefixCaching pc : {PrefixCaching::kDisabled, PrefixCaching::kEnabled}) {
    // 12 blocks of 4 tokens: too few for everyone at once -> preemptions; budget 5 -> chunks.
    Harness tight(12, {.max_num_seqs = 8, .max_num_batched_tokens = 5, .max_model_len = 1000}, pc);
    add_requests(tight.scheduler);
    EXPECT_EQ(tight.run_all(), reference);
    EXPECT_GT(tight.scheduler.num_preemptions(), 0u);
    EXPECT_EQ(tight.blocks.num_used_blocks(), 0);
  }
}

TEST(Scheduler, PreemptsTheNewestAndRecomputesItLater) {
  // 4 blocks of 4: a and b each hold 2 after their 7-token prompts; position 8 needs a third.
  Harness h(4, {.max_num_seqs = 8, .max_num_batched_tokens = 64, .max_model_len = 1000},
            PrefixCaching::kDisabled);
  h.scheduler.add(make_seq("a", 7, 6));
  h.scheduler.add(make_seq("b", 7, 6, /*first_token=*/50));
  SchedulerOutput out;
  h.step(&out);  // both prefill positions 0..6 and sample
  ASSERT_EQ(out.seqs.size(), 2u);
  h.step(&out);  // both decode position 7 (still in block 1)
  ASSERT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(h.blocks.num_free_blocks(), 0);
  h.step(&out);  // a needs block 2 for position 8 -> b (newest) is preempted
  EXPECT_EQ(out.num_preempted, 1);
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].seq->request_id, "a");
  EXPECT_EQ(h.scheduler.num_waiting(), 1);
  EXPECT_EQ(h.scheduler.num_preemptions(), 1u);
  auto outputs = h.run_all();
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_EQ(outputs["a"].size(), 6u);
  EXPECT_EQ(outputs["b"].size(), 6u);
  EXPECT_EQ(h.blocks.num_used_blocks(), 0);
}

TEST(Scheduler, PrefixHitsSkipCachedTokensAndKeepTheLastOne) {
  Harness h(64);
  h.scheduler.add(make_seq("a", 12, 2));  // 3 full blocks
  h.run_all();
  EXPECT_EQ(h.blocks.prefix_cache().num_cached_blocks(), 3);  // 12 prompt tokens; 13th not full
  h.scheduler.add(make_seq("b", 12, 2));  // the same prompt: at most 11 tokens may hit
  SchedulerOutput out;
  h.step(&out);
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].num_new_tokens, 4);  // 8 cached tokens, 4 computed
  EXPECT_EQ(out.seqs[0].seq->num_cached_tokens, 8);
  EXPECT_EQ(h.blocks.prefix_cache().queried_tokens(), 24u);
  EXPECT_EQ(h.blocks.prefix_cache().hit_tokens(), 8u);
  h.run_all();
  EXPECT_EQ(h.blocks.num_used_blocks(), 0);
}

TEST(Scheduler, AbortRemovesWaitingAndRunningSequencesAndFreesBlocks) {
  Harness h(64, {.max_num_seqs = 1, .max_num_batched_tokens = 64, .max_model_len = 1000});
  h.scheduler.add(make_seq("run", 9, 50));
  h.scheduler.add(make_seq("wait", 9, 50));
  h.step();
  EXPECT_EQ(h.blocks.num_used_blocks(), 3);
  auto waiting = h.scheduler.abort("wait");
  ASSERT_NE(waiting, nullptr);
  EXPECT_EQ(waiting->finish_reason, FinishReason::kAbort);
  auto running = h.scheduler.abort("run");
  ASSERT_NE(running, nullptr);
  EXPECT_EQ(running->finish_reason, FinishReason::kAbort);
  EXPECT_TRUE(running->blocks.table.empty());
  EXPECT_EQ(h.blocks.num_used_blocks(), 0);
  EXPECT_EQ(h.scheduler.abort("run"), nullptr);
  EXPECT_EQ(h.scheduler.abort("unknown"), nullptr);
  EXPECT_FALSE(h.scheduler.has_work());
  EXPECT_TRUE(h.scheduler.schedule().empty());
}

TEST(Scheduler, AbortAllFinishesEverything) {
  Harness h(64, {.max_num_seqs = 1, .max_num_batched_tokens = 64, .max_model_len = 1000});
  h.scheduler.add(make_seq("a", 5, 50));
  h.scheduler.add(make_seq("b", 5, 50));
  h.step();
  auto all = h.scheduler.abort_all();
  ASSERT_EQ(all.size(), 2u);
  for (auto& s : all) EXPECT_EQ(s->finish_reason, FinishReason::kAbort);
  EXPECT_EQ(h.blocks.num_used_blocks(), 0);
}

TEST(Scheduler, StopFromTheRunnerFinishesAndFrees) {
  Harness h(64);
  h.scheduler.add(make_seq("a", 5, 50));
  SchedulerOutput out = h.scheduler.schedule();
  std::vector<StepToken> tokens = {{.token_id = 2, .finish = FinishReason::kStop}};
  auto finished = h.scheduler.update(out, tokens);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0]->finish_reason, FinishReason::kStop);
  EXPECT_EQ(finished[0]->output_ids().size(), 1u);
  EXPECT_EQ(h.blocks.num_used_blocks(), 0);
  EXPECT_TRUE(finished[0]->times.first_token.has_value());
}

TEST(Scheduler, RequestsThatCanNeverFitAreRejectedWithAClearMessage) {
  Harness h(4, {.max_num_seqs = 8, .max_num_batched_tokens = 64, .max_model_len = 20});
  auto message = [&](std::unique_ptr<Sequence> s) {
    return h.scheduler.admission_error(*s).value_or("");
  };
  EXPECT_NE(message(make_seq("e", 0, 5)).find("prompt is empty"), std::string::npos);
  EXPECT_NE(message(make_seq("l", 15, 6, 10, 20)).find("exceeds max_model_len (20)"),
            std::string::npos);
  EXPECT_NE(message(make_seq("p", 20, 1, 10, 20)).find("max_model_len is 20"), std::string::npos);
  // 4 blocks hold 16 tokens: 10 + 7 - 1 = 16 fits, 10 + 8 - 1 = 17 does not.
  EXPECT_EQ(message(make_seq("fits", 10, 7, 10, 20)), "");
  std::string kv = message(make_seq("kv", 10, 8, 10, 20));
  EXPECT_NE(kv.find("needs 5 KV blocks"), std::string::npos) << kv;
  EXPECT_THROW(h.scheduler.add(make_seq("kv", 10, 8, 10, 20)), Error);
  EXPECT_FALSE(h.scheduler.has_work());
}

}  // namespace
}  // namespace tandem
