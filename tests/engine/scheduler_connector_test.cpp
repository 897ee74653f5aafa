// The scheduler's KV-connector hooks with a scripted connector (no network, no model): at a
// sequence's first admission the loadable tokens start out computed and only the rest is
// scheduled; a load that comes up short is computed from where it stopped; a sequence whose
// transfer is still arriving is passed over without blocking the ones behind it; a preempted
// sequence recomputes without asking the connector again.
#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <set>

#include "engine/scheduler.h"

namespace tandem {
namespace {

constexpr int kConnectorBlockSize = 4;

class ScriptedConnector final : public KvConnector {
 public:
  std::map<std::string, int> loadable;  // by request id: prompt tokens available
  std::map<std::string, int> load_cap;  // by request id: what a load actually delivers
  std::set<std::string> arriving;
  std::vector<std::pair<std::string, int>> loads;  // (request id, tokens asked), in call order

  bool transfer_arriving(const Sequence& seq) override { return arriving.contains(seq.request_id); }
  int num_loadable_tokens(const Sequence& seq, int num_computed) override {
    auto it = loadable.find(seq.request_id);
    return it == loadable.end() ? 0 : std::max(0, it->second - num_computed);
  }
  int load(const Sequence& seq, int num_computed, int num_tokens) override {
    loads.emplace_back(seq.request_id, num_tokens);
    auto it = load_cap.find(seq.request_id);
    int cap = it == load_cap.end() ? num_tokens : std::max(0, it->second - num_computed);
    return std::min(num_tokens, cap);
  }
  void on_prompt_computed(const Sequence&) override {}
  void on_finished(const Sequence&) override {}
  void abort_transfer(const std::string&) override {}  // (the scheduler never calls it)
  KvConnectorStats stats() const override { return {}; }
};

std::unique_ptr<Sequence> make_connector_seq(const std::string& id, int prompt_len,
                                             int max_tokens) {
  EngineRequest req;
  req.request_id = id;
  req.prompt_ids.resize(size_t(prompt_len));
  std::iota(req.prompt_ids.begin(), req.prompt_ids.end(), 10);
  req.params.max_tokens = max_tokens;
  return std::make_unique<Sequence>(std::move(req), nullptr, /*max_model_len=*/1000);
}

struct ConnectorHarness {
  explicit ConnectorHarness(int num_blocks, int budget = 64)
      : blocks({.num_blocks = num_blocks,
                .block_size = kConnectorBlockSize,
                .prefix_caching = PrefixCaching::kDisabled,
                .model_fingerprint = "connector-test"}),
        scheduler({.max_num_seqs = 8, .max_num_batched_tokens = budget, .max_model_len = 1000},
                  blocks, &connector) {}
  ScriptedConnector connector;
  BlockManager blocks;
  Scheduler scheduler;
};

// What a step scheduled for `id`: (first new position, number of new tokens), or (-1, 0).
std::pair<int, int> scheduled(const SchedulerOutput& out, const std::string& id) {
  for (const ScheduledSeq& s : out.seqs) {
    if (s.seq->request_id == id) return {s.seq->num_computed_tokens, s.num_new_tokens};
  }
  return {-1, 0};
}

TEST(SchedulerConnector, LoadedTokensStartComputed) {
  ConnectorHarness h(64);
  h.connector.loadable["a"] = 9;
  h.scheduler.add(make_connector_seq("a", 10, 4));
  h.scheduler.add(make_connector_seq("b", 6, 4));  // nothing to load: still asked (load of 0)
  SchedulerOutput out = h.scheduler.schedule();
  EXPECT_EQ(scheduled(out, "a"), std::make_pair(9, 1));
  EXPECT_EQ(scheduled(out, "b"), std::make_pair(0, 6));
  EXPECT_EQ(out.num_tokens, 7);
  EXPECT_TRUE(out.seqs[0].samples);
  ASSERT_EQ(h.connector.loads.size(), 2u);
  EXPECT_EQ(h.connector.loads[0], std::make_pair(std::string("a"), 9));
  EXPECT_EQ(h.connector.loads[1], std::make_pair(std::string("b"), 0));
  EXPECT_EQ(out.seqs[0].seq->num_cached_tokens, 9);  // reported like vLLM's external hits
}

TEST(SchedulerConnector, ShortLoadIsComputedFromWhereItStopped) {
  ConnectorHarness h(64, /*budget=*/3);
  h.connector.loadable["a"] = 11;
  h.connector.load_cap["a"] = 5;  // chunks freed between lookup and load
  h.scheduler.add(make_connector_seq("a", 12, 2));
  SchedulerOutput out = h.scheduler.schedule();
  // Blocks were allocated for 11 + 1 tokens; the budget caps the step at 3 tokens from 5.
  EXPECT_EQ(scheduled(out, "a"), std::make_pair(5, 3));
  EXPECT_FALSE(out.seqs[0].samples);
  EXPECT_GE(out.seqs[0].seq->blocks.table.size() * kConnectorBlockSize, 8u);
}

TEST(SchedulerConnector, ArrivingTransfersArePassedOver) {
  ConnectorHarness h(64);
  h.connector.arriving = {"a"};
  h.connector.loadable["a"] = 7;
  h.scheduler.add(make_connector_seq("a", 8, 2));
  h.scheduler.add(make_connector_seq("b", 5, 2));
  SchedulerOutput out = h.scheduler.schedule();
  EXPECT_EQ(scheduled(out, "a").first, -1);
  EXPECT_EQ(scheduled(out, "b"), std::make_pair(0, 5));
  EXPECT_EQ(h.scheduler.num_waiting(), 1);
  h.connector.arriving.clear();
  std::vector<StepToken> tokens(out.seqs.size(), StepToken{42, FinishReason::kNone});
  h.scheduler.update(out, tokens);
  out = h.scheduler.schedule();
  EXPECT_EQ(scheduled(out, "a"), std::make_pair(7, 1));
}

TEST(SchedulerConnector, PreemptedSequencesRecomputeWithoutLoading) {
  ConnectorHarness h(/*num_blocks=*/4);  // 16 tokens: room for one of the two sequences' growth
  h.connector.loadable["a"] = 7;
  h.connector.loadable["b"] = 7;
  h.scheduler.add(make_connector_seq("a", 8, 8));
  h.scheduler.add(make_connector_seq("b", 8, 8));
  bool preempted = false;
  for (int step = 0; step < 40 && h.scheduler.has_work(); ++step) {
    SchedulerOutput out = h.scheduler.schedule();
    preempted = preempted || out.num_preempted > 0;
    std::vector<StepToken> tokens;
    for (const auto& s : out.seqs) {
      tokens.push_back({s.samples ? 42 : -1, FinishReason::kNone});
    }
    h.scheduler.update(out, tokens);
  }
  EXPECT_TRUE(preempted);
  EXPECT_FALSE(h.scheduler.has_work());
  ASSERT_EQ(h.connector.loads.size(), 2u) << "only at each sequence's first admission";
}

}  // namespace
}  // namespace tandem
