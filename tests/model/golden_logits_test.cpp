// The CPU Llama forward pass against Hugging Face transformers (float64 eager) for the five golden
// models: last-position and per-position logits within 1e-3, greedy decoding through the KV cache
// token for token (until a legitimate near-tie), chunked prefill equal to one prefill, batched
// sequences with scattered block tables, and single-sequence decode speed for stories260K.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <numeric>
#include <random>

#include "core/json_file.h"
#include "core/thread_pool.h"
#include "model/llama_model.h"
#include "test_support.h"

namespace tandem {
namespace {

constexpr double kLogitTolerance = 1e-3;
constexpr double kTieMargin = 1e-3;  // greedy steps closer than this may legitimately flip
constexpr int kGoldenBlockSize = 16;
constexpr int kMaxBlocksPerSeq = 32;  // 512 tokens per sequence
constexpr int64_t kNumBlocks = 256;

struct GoldenCase {
  std::vector<int32_t> prompt;
  std::vector<float> last_logits;                     // (vocab)
  std::map<int, std::vector<float>> position_logits;  // position -> (vocab)
  std::vector<int32_t> greedy_ids;
  std::vector<double> greedy_margins;
};

std::vector<GoldenCase> load_cases(const std::string& model) {
  auto j = read_json_file(test::shared_dir() / "golden" / "logits" / (model + ".json"));
  std::vector<GoldenCase> cases;
  for (const auto& c : j.at("cases")) {
    GoldenCase g;
    g.prompt = c.at("prompt_ids").get<std::vector<int32_t>>();
    g.last_logits = c.at("last_logits").get<std::vector<float>>();
    if (c.contains("position_logits")) {
      for (const auto& [pos, logits] : c["position_logits"].items())
        g.position_logits[std::stoi(pos)] = logits.get<std::vector<float>>();
    }
    g.greedy_ids = c.at("greedy_ids").get<std::vector<int32_t>>();
    g.greedy_margins = c.at("greedy_margins").get<std::vector<double>>();
    cases.push_back(std::move(g));
  }
  return cases;
}

// One sequence's KV bookkeeping: its block table and how many tokens are cached.
struct Seq {
  std::vector<int32_t> blocks;
  int32_t len = 0;
};

// Hands out cache blocks in a scrambled order so block tables are scattered.
class BlockAllocator {
 public:
  explicit BlockAllocator(uint32_t seed) : free_(kNumBlocks) {
    std::iota(free_.begin(), free_.end(), 0);
    std::shuffle(free_.begin(), free_.end(), std::mt19937(seed));
  }
  int32_t take() {
    EXPECT_FALSE(free_.empty());
    int32_t b = free_.back();
    free_.pop_back();
    return b;
  }

 private:
  std::vector<int32_t> free_;
};

// Builds a ForwardBatch sequence by sequence, the way a scheduler would.
class BatchBuilder {
 public:
  BatchBuilder() {
    batch_.query_start = {0};
    batch_.max_blocks_per_seq = kMaxBlocksPerSeq;
  }
  // Appends `tokens` as new tokens of `seq`; returns the batch row of the first one.
  int64_t add(Seq& seq, const std::vector<int32_t>& tokens, BlockAllocator& alloc) {
    const int64_t first_row = batch_.num_tokens();
    for (int32_t tok : tokens) {
      const int32_t pos = seq.len++;
      if (pos % kGoldenBlockSize == 0) seq.blocks.push_back(alloc.take());
      batch_.token_ids.push_back(tok);
      batch_.positions.push_back(pos);
      batch_.slot_mapping.push_back(int64_t(seq.blocks[size_t(pos / kGoldenBlockSize)]) *
                                        kGoldenBlockSize +
                                    pos % kGoldenBlockSize);
    }
    batch_.query_start.push_back(int32_t(batch_.num_tokens()));
    batch_.context_lens.push_back(seq.len);
    std::vector<int32_t> row(kMaxBlocksPerSeq, -1);
    std::copy(seq.blocks.begin(), seq.blocks.end(), row.begin());
    batch_.block_tables.insert(batch_.block_tables.end(), row.begin(), row.end());
    return first_row;
  }
  void want_logits(int64_t row) { batch_.logits_indices.push_back(int32_t(row)); }
  const ForwardBatch& batch() const { return batch_; }

 private:
  ForwardBatch batch_;
};

// (logits_indices.size(), vocab) logits of `batch`.
std::vector<float> run(LlamaModel& model, KvCache& kv, const ForwardBatch& batch) {
  std::vector<float> logits(batch.logits_indices.size() * size_t(model.config().vocab_size));
  model.forward(batch, kv, logits.data());
  return logits;
}

double max_abs_diff(const float* got, const std::vector<float>& want) {
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - double(want[i])));
  return worst;
}

struct Top2 {
  int32_t id;
  double margin;
};
Top2 top2(const float* logits, int vocab) {
  const int32_t best = int32_t(std::max_element(logits, logits + vocab) - logits);
  float second = -INFINITY;
  for (int i = 0; i < vocab; ++i)
    if (i != best) second = std::max(second, logits[i]);
  return {best, double(logits[best]) - second};
}

class GoldenLogits : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    model_ = std::make_unique<LlamaModel>(test::golden_model(GetParam()), &pool_);
    kv_ = std::make_unique<KvCache>(model_->kv_cache_shape(kNumBlocks, kGoldenBlockSize));
    cases_ = load_cases(GetParam());
    vocab_ = model_->config().vocab_size;
  }
  // Checks golden logits of one row and tracks the worst error.
  void expect_logits(const float* got, const std::vector<float>& want, const std::string& what) {
    ASSERT_EQ(want.size(), size_t(vocab_)) << what;
    const double err = max_abs_diff(got, want);
    worst_ = std::max(worst_, err);
    EXPECT_LE(err, kLogitTolerance) << GetParam() << " " << what;
  }

  // Prefills every case in one batch and checks last and per-position logits. Returns the
  // logits (rows, vocab) and points next_[c] at case c's last-position row.
  std::vector<float> prefill_all_cases(std::vector<Seq>& seqs, BlockAllocator& alloc) {
    BatchBuilder prefill;
    std::vector<std::pair<size_t, int>> wanted;  // (case, position) per logits row; -1 = last
    for (size_t c = 0; c < cases_.size(); ++c) {
      const int64_t row0 = prefill.add(seqs[c], cases_[c].prompt, alloc);
      for (const auto& [pos, logits] : cases_[c].position_logits) {
        prefill.want_logits(row0 + pos);
        wanted.emplace_back(c, pos);
      }
      prefill.want_logits(row0 + int64_t(cases_[c].prompt.size()) - 1);
      wanted.emplace_back(c, -1);
    }
    std::vector<float> logits = run(*model_, *kv_, prefill.batch());
    next_.assign(cases_.size(), nullptr);
    for (size_t r = 0; r < wanted.size(); ++r) {
      const auto [c, pos] = wanted[r];
      const float* row = logits.data() + r * size_t(vocab_);
      if (pos >= 0) {
        expect_logits(row, cases_[c].position_logits.at(pos),
                      fmt::format("case {} pos {}", c, pos));
      } else {
        expect_logits(row, cases_[c].last_logits, fmt::format("case {} last", c));
        next_[c] = row;
      }
    }
    return logits;
  }

  // Greedy decoding of every case together, one token per live case per step, each step's
  // argmax checked against greedy_ids (and its top-2 margin against greedy_margins) until a
  // case reaches a near-tie where the reference picked the other token. Returns the tokens matched.
  int greedy_decode_all_cases(std::vector<Seq>& seqs, BlockAllocator& alloc) {
    std::vector<float> step_logits;
    std::vector<bool> live(cases_.size(), true);
    int compared = 0;
    for (size_t step = 0;; ++step) {
      BatchBuilder decode;
      std::vector<size_t> rows;  // case of each decode row
      for (size_t c = 0; c < cases_.size(); ++c) {
        const GoldenCase& g = cases_[c];
        if (!live[c] || step >= g.greedy_ids.size()) continue;
        const Top2 top = top2(next_[c], vocab_);
        if (top.id != g.greedy_ids[step] && g.greedy_margins[step] <= kTieMargin) {
          live[c] = false;  // a legitimate flip at a near-tie: stop comparing this case
          continue;
        }
        EXPECT_EQ(top.id, g.greedy_ids[step]) << GetParam() << " case " << c << " step " << step;
        EXPECT_NEAR(top.margin, g.greedy_margins[step], 2 * kLogitTolerance) << c << " " << step;
        if (top.id != g.greedy_ids[step]) return compared;
        ++compared;
        if (step + 1 == g.greedy_ids.size()) continue;
        decode.add(seqs[c], {g.greedy_ids[step]}, alloc);
        decode.want_logits(int64_t(rows.size()));
        rows.push_back(c);
      }
      if (rows.empty()) return compared;
      step_logits = run(*model_, *kv_, decode.batch());
      for (size_t r = 0; r < rows.size(); ++r)
        next_[rows[r]] = step_logits.data() + r * size_t(vocab_);
    }
  }

  ThreadPool pool_{0};
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<KvCache> kv_;
  std::vector<GoldenCase> cases_;
  int vocab_ = 0;
  double worst_ = 0;
  std::vector<const float*> next_;  // (cases) each case's logits for its next token
};

// Every case prefilled together in one batch, then greedy-decoded together one token per step.
TEST_P(GoldenLogits, BatchedPrefillAndGreedyDecodeMatchTransformers) {
  BlockAllocator alloc(7);
  std::vector<Seq> seqs(cases_.size());
  const std::vector<float> prefill_logits = prefill_all_cases(seqs, alloc);  // next_ points here
  const int compared = greedy_decode_all_cases(seqs, alloc);
  EXPECT_GT(compared, int(cases_.size()) * 10) << "too few greedy steps were compared";
  std::cout << "[golden] " << GetParam() << ": worst |logit - transformers| = " << worst_
            << " over prompts and positions; " << compared << " greedy tokens matched\n";
  RecordProperty("worst_logit_error", std::to_string(worst_));
}

// Prefill in chunks of 7 tokens gives the same logits at every position as one prefill.
TEST_P(GoldenLogits, ChunkedPrefillEqualsOnePrefill) {
  constexpr int64_t kChunk = 7;
  BlockAllocator alloc(11);
  for (size_t c = 0; c < cases_.size(); ++c) {
    const auto& prompt = cases_[c].prompt;
    const int64_t len = int64_t(prompt.size());
    Seq whole_seq, chunked_seq;
    BatchBuilder whole;
    whole.add(whole_seq, prompt, alloc);
    for (int64_t r = 0; r < len; ++r) whole.want_logits(r);
    const auto want = run(*model_, *kv_, whole.batch());  // (len, vocab)
    for (int64_t begin = 0; begin < len; begin += kChunk) {
      const int64_t end = std::min(len, begin + kChunk);
      BatchBuilder chunk;
      chunk.add(chunked_seq, {prompt.begin() + begin, prompt.begin() + end}, alloc);
      for (int64_t r = 0; r < end - begin; ++r) chunk.want_logits(r);
      const auto got = run(*model_, *kv_, chunk.batch());
      for (int64_t r = begin; r < end; ++r) {
        const std::vector<float> want_row(want.begin() + r * vocab_,
                                          want.begin() + (r + 1) * vocab_);
        ASSERT_LE(max_abs_diff(got.data() + (r - begin) * vocab_, want_row), 1e-5)
            << GetParam() << " case " << c << " position " << r;
      }
      if (end == len)
        expect_logits(got.data() + (end - 1 - begin) * vocab_, cases_[c].last_logits,
                      "chunked last");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllModels, GoldenLogits,
                         ::testing::Values("stories260K", "tiny-llama-gqa", "tiny-llama3-rope",
                                           "tiny-qwen2", "tiny-llama-f16-sharded"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// One sequence generating alone (batch of 1 each step), as `tandem generate` does on the CPU:
// the 64 greedy tokens of the first stories260K prompt, and the decode speed.
TEST(GoldenLogitsSpeed, Stories260KSingleSequenceDecode) {
  ThreadPool pool(0);
  LlamaModel model(test::golden_model("stories260K"), &pool);
  KvCache kv(model.kv_cache_shape(kNumBlocks, kGoldenBlockSize));
  const GoldenCase g = load_cases("stories260K").front();
  BlockAllocator alloc(3);
  Seq seq;
  BatchBuilder prefill;
  prefill.add(seq, g.prompt, alloc);
  prefill.want_logits(int64_t(g.prompt.size()) - 1);
  auto logits = run(model, kv, prefill.batch());
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  size_t step = 0;
  for (; step < g.greedy_ids.size(); ++step) {
    const Top2 top = top2(logits.data(), model.config().vocab_size);
    if (top.id != g.greedy_ids[step] && g.greedy_margins[step] <= kTieMargin) break;
    ASSERT_EQ(top.id, g.greedy_ids[step]) << "step " << step;
    BatchBuilder decode;
    decode.add(seq, {top.id}, alloc);
    decode.want_logits(0);
    logits = run(model, kv, decode.batch());
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu_secs = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  EXPECT_EQ(step, g.greedy_ids.size());
  std::cout << "[golden] stories260K single-sequence decode: " << step << " tokens, "
            << fmt::format("{:.3f} ms/token wall ({:.0f} tokens/s), {:.3f} ms/token CPU",
                           1e3 * secs / double(step), double(step) / secs,
                           1e3 * cpu_secs / double(step))
            << ", " << pool.size() << " threads, matmul path " << cpu::matmul_isa_name() << "\n";
}

}  // namespace
}  // namespace tandem
