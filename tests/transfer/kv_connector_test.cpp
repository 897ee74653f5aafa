// The KV connector end to end in one process: a prefiller engine (pd_role sender) and a decoder
// engine (receiver) over UCX loopback, with the test playing the proxy's notification port. For
// prompts from 1 token to several 16-token chunks (aligned and not), the decoder's greedy tokens
// equal a plain engine's, it computed only the last prompt token (the rest was loaded), and its
// transfer buffer is empty afterwards, with prefix caching off and on. Also: a transfer to an
// unreachable decoder or larger than the sender's staging budget is an Abort to the proxy, a full
// staging makes the prefiller wait instead, and a decode with nothing transferred computes the
// whole prompt.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <thread>

#include "engine/llm_engine.h"
#include "engine/wait_for_stats.h"
#include "kv/block_manager.h"
#include "test_support.h"
#include "transfer/kv_receiver.h"
#include "transfer/proxy_stub.h"
#include "transfer/test_connector_config.h"
#include "transfer/ucx_transport.h"

namespace tandem {
namespace {

using test::ProxyStub;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kChunk = 16;
constexpr int kDecodeTokens = 8;

EngineConfig engine_config(int block_size, PrefixCaching prefix) {
  EngineConfig c;
  c.model_dir = test::golden_model("stories260K");
  c.num_threads = 1;
  c.block_size = block_size;
  c.kv_cache_memory_bytes = 4 << 20;
  c.enable_prefix_caching = prefix == PrefixCaching::kEnabled;
  return c;
}

KvConnectorConfig connector_config(PdRole role) {
  return test::test_connector_config(role, kChunk);
}

struct Result {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
};

std::shared_ptr<RequestStream> submit(LlmEngine& engine, const std::string& id,
                                      const std::vector<int32_t>& prompt, int max_tokens,
                                      std::optional<KvTransferParams> transfer = std::nullopt) {
  EngineRequest r;
  r.request_id = id;
  r.prompt_ids = prompt;
  r.params.temperature = 0;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.kv_transfer = std::move(transfer);
  auto stream = std::make_shared<RequestStream>();
  engine.add_request(std::move(r), stream);
  return stream;
}

Result collect(RequestStream& stream) {
  Result out;
  auto deadline = Clock::now() + 30s;
  while (out.finish == FinishReason::kNone && Clock::now() < deadline) {
    auto o = stream.pop(100ms);
    if (!o) continue;
    out.tokens.insert(out.tokens.end(), o->new_token_ids.begin(), o->new_token_ids.end());
    out.finish = o->finish;
  }
  return out;
}

Result run(LlmEngine& engine, const std::string& id, const std::vector<int32_t>& prompt,
           int max_tokens, std::optional<KvTransferParams> transfer = std::nullopt) {
  return collect(*submit(engine, id, prompt, max_tokens, std::move(transfer)));
}

EngineStats wait_stats(const LlmEngine& engine,
                       const std::function<bool(const EngineStats&)>& ready) {
  return test::wait_for_stats(engine, ready, 5s);
}

std::vector<int32_t> prompt_of(int length, int seed) {
  std::vector<int32_t> ids = {1};  // BOS
  for (int i = 1; i < length; ++i) ids.push_back(int32_t(3 + (i * 131 + seed * 977) % 500));
  return ids;
}

KvTransferParams prefill_params(const std::string& id, const KvReceiver& receiver) {
  return {DisaggSpec{id, test::kLoopbackHost, {receiver.init_port()}, {receiver.alloc_port()}},
          std::nullopt};
}

KvTransferParams decode_params(const std::string& id) {
  return {DisaggSpec{id, {}, {}, {}}, std::nullopt};
}

class KvConnectorTest : public testing::TestWithParam<PrefixCaching> {
 protected:
  void SetUp() override {
    EngineConfig rx = engine_config(/*block_size=*/8, GetParam());
    rx.kv_connector = connector_config(PdRole::kReceiver);
    rx.kv_connector->peer = ReceiverAddress{test::kLoopbackHost, 0, 0};
    rx.kv_transport = make_ucx_transport();
    decoder_ = std::make_unique<LlmEngine>(rx);
    receiver_ = dynamic_cast<KvReceiver*>(decoder_->kv_connector());
    ASSERT_NE(receiver_, nullptr);

    EngineConfig tx = engine_config(/*block_size=*/16, PrefixCaching::kDisabled);
    tx.kv_connector = connector_config(PdRole::kSender);
    tx.kv_connector->proxy_host = test::kLoopbackHost;
    tx.kv_connector->proxy_port = proxy_.port();
    tx.kv_transport = make_ucx_transport();
    prefiller_ = std::make_unique<LlmEngine>(tx);
    decoder_->start();
    prefiller_->start();
  }

  ProxyStub proxy_;  // outlives both engines
  std::unique_ptr<LlmEngine> decoder_, prefiller_;
  KvReceiver* receiver_ = nullptr;
};

TEST_P(KvConnectorTest, DecoderLoadsThePromptAndMatchesAPlainEngine) {
  const std::vector<int> lengths = {1, 2, 15, 16, 17, 31, 32, 33, 64, 100, 150};
  uint64_t sent = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    // Twice with prefix caching, so the second decode also hits the decoder's prefix cache.
    for (int round = 0; round < (GetParam() == PrefixCaching::kEnabled ? 2 : 1); ++round) {
      const int len = lengths[i];
      SCOPED_TRACE(testing::Message() << "prompt of " << len << " tokens, round " << round);
      std::vector<int32_t> prompt = prompt_of(len, int(i));
      std::string id = "xfer-" + std::to_string(i) + "-" + std::to_string(round);
      Result expected = run(*prefiller_, "ref-" + id, prompt, kDecodeTokens);  // no transfer
      ASSERT_EQ(expected.tokens.size(), size_t(kDecodeTokens));

      Result first = run(*prefiller_, "pre-" + id, prompt, 1, prefill_params(id, *receiver_));
      ASSERT_EQ(first.tokens.size(), 1u);
      EXPECT_EQ(first.tokens[0], expected.tokens[0]);
      WireMessage note = proxy_.next();
      ASSERT_TRUE(std::holds_alternative<TransferDone>(note))
          << (std::holds_alternative<Abort>(note) ? std::get<Abort>(note).reason : "");
      EXPECT_EQ(std::get<TransferDone>(note).request_id, id);
      ++sent;

      EngineStats before = decoder_->stats();
      Result decoded = run(*decoder_, "dec-" + id, prompt, kDecodeTokens, decode_params(id));
      EXPECT_EQ(decoded.tokens, expected.tokens);
      EngineStats after = wait_stats(*decoder_, [&](const EngineStats& s) {
        return s.generation_tokens >= before.generation_tokens + kDecodeTokens &&
               s.kv_transfer.buffer_bytes_used == 0;
      });
      // Only the last prompt token was computed; the rest came from chunks or the prefix cache.
      EXPECT_EQ(after.prompt_tokens_computed - before.prompt_tokens_computed, 1u);
      uint64_t received =
          after.kv_transfer.prompt_tokens_received - before.kv_transfer.prompt_tokens_received;
      uint64_t cached = after.prefix_cache_hits - before.prefix_cache_hits;
      EXPECT_EQ(received + cached, uint64_t(len - 1));
      if (round == 0) {
        EXPECT_EQ(received, uint64_t(len - 1));
      }
      EXPECT_EQ(after.kv_transfer.buffer_bytes_used, 0u) << "pages freed once loaded";
    }
  }
  EngineStats tx = wait_stats(
      *prefiller_, [&](const EngineStats& s) { return s.kv_transfer.transfers_sent == sent; });
  EXPECT_EQ(tx.kv_transfer.transfers_sent, sent);
  EXPECT_EQ(tx.kv_transfer.transfer_failures, 0u);
  EXPECT_GT(tx.kv_transfer.bytes_sent, 0u);
  EXPECT_EQ(decoder_->stats().kv_transfer.transfers_received, sent);
}

TEST_P(KvConnectorTest, WithoutATransferTheDecoderComputesEverything) {
  std::vector<int32_t> prompt = prompt_of(40, 99);
  Result expected = run(*prefiller_, "ref", prompt, kDecodeTokens);
  EngineStats before = decoder_->stats();
  Result decoded = run(*decoder_, "dec", prompt, kDecodeTokens, decode_params("never-sent"));
  EXPECT_EQ(decoded.tokens, expected.tokens);
  EngineStats after = wait_stats(*decoder_, [&](const EngineStats& s) {
    return s.generation_tokens >= before.generation_tokens + kDecodeTokens;
  });
  EXPECT_EQ(after.prompt_tokens_computed - before.prompt_tokens_computed, 40u);
  EXPECT_EQ(after.kv_transfer.prompt_tokens_received, before.kv_transfer.prompt_tokens_received);
}

TEST_P(KvConnectorTest, UnreachableDecoderIsAnAbortToTheProxy) {
  int closed_port = 0;  // a port that was listened on and is closed again
  {
    std::unique_ptr<Transport> t = make_ucx_transport();
    closed_port = t->listen(test::kLoopbackHost, 0)->port();
  }
  KvTransferParams params{DisaggSpec{"lost", test::kLoopbackHost, {closed_port}, {closed_port}},
                          std::nullopt};
  // The prefill request itself is served normally.
  Result first = run(*prefiller_, "pre-lost", prompt_of(20, 5), 1, params);
  EXPECT_EQ(first.tokens.size(), 1u);
  WireMessage note = proxy_.next();
  ASSERT_TRUE(std::holds_alternative<Abort>(note));
  EXPECT_EQ(std::get<Abort>(note).request_id, "lost");
  EngineStats s = wait_stats(
      *prefiller_, [](const EngineStats& s) { return s.kv_transfer.transfer_failures == 1; });
  EXPECT_EQ(s.kv_transfer.transfer_failures, 1u);
}

// The decoder goes away: the next transfer to it is an Abort; a decoder restarted on the same
// ports is reconnected to and receives the one after.
TEST_P(KvConnectorTest, RestartedDecoderRejoins) {
  std::vector<int32_t> prompt = prompt_of(37, 3);
  Result expected = run(*prefiller_, "ref", prompt, kDecodeTokens);
  const int init_port = receiver_->init_port(), alloc_port = receiver_->alloc_port();
  KvTransferParams to_decoder{DisaggSpec{"", test::kLoopbackHost, {init_port}, {alloc_port}},
                              std::nullopt};
  auto prefill = [&](const std::string& id) {
    KvTransferParams p = to_decoder;
    p.disagg_spec->req_id = id;
    EXPECT_EQ(run(*prefiller_, "pre-" + id, prompt, 1, p).tokens.size(), 1u);
    return proxy_.next();
  };
  ASSERT_TRUE(std::holds_alternative<TransferDone>(prefill("before")));

  decoder_.reset();  // the decoder dies
  receiver_ = nullptr;
  WireMessage lost = prefill("while-down");
  ASSERT_TRUE(std::holds_alternative<Abort>(lost));
  EXPECT_EQ(std::get<Abort>(lost).request_id, "while-down");

  EngineConfig rx = engine_config(/*block_size=*/8, GetParam());
  rx.kv_connector = connector_config(PdRole::kReceiver);
  rx.kv_connector->peer = ReceiverAddress{test::kLoopbackHost, init_port, alloc_port};
  rx.kv_transport = make_ucx_transport();
  decoder_ = std::make_unique<LlmEngine>(rx);
  decoder_->start();
  WireMessage back = prefill("after");
  ASSERT_TRUE(std::holds_alternative<TransferDone>(back))
      << (std::holds_alternative<Abort>(back) ? std::get<Abort>(back).reason : "");
  EXPECT_EQ(run(*decoder_, "dec-after", prompt, kDecodeTokens, decode_params("after")).tokens,
            expected.tokens);
  EngineStats s = wait_stats(
      *decoder_, [](const EngineStats& s) { return s.kv_transfer.prompt_tokens_received == 36; });
  EXPECT_EQ(s.kv_transfer.prompt_tokens_received, 36u);
  EXPECT_EQ(s.prompt_tokens_computed, 1u);
}

// One prefiller, two decoders (1P2D): transfers in flight to both at once, each decoder loads
// what was sent to it.
TEST_P(KvConnectorTest, OnePrefillerTwoDecoders) {
  EngineConfig rx = engine_config(/*block_size=*/16, GetParam());
  rx.kv_connector = connector_config(PdRole::kReceiver);
  rx.kv_connector->peer = ReceiverAddress{test::kLoopbackHost, 0, 0};
  rx.kv_transport = make_ucx_transport();
  LlmEngine second(rx);
  second.start();
  std::vector<LlmEngine*> decoders = {decoder_.get(), &second};
  std::vector<KvReceiver*> receivers = {receiver_,
                                        dynamic_cast<KvReceiver*>(second.kv_connector())};
  constexpr int kRequests = 6;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < kRequests; ++i) {
    std::string id = "xpyd-" + std::to_string(i);
    streams.push_back(submit(*prefiller_, "pre-" + id, prompt_of(30 + i, 70 + i), 1,
                             prefill_params(id, *receivers[size_t(i % 2)])));
  }
  for (auto& s : streams) EXPECT_EQ(collect(*s).tokens.size(), 1u);
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_TRUE(std::holds_alternative<TransferDone>(proxy_.next()));
  }
  for (int i = 0; i < kRequests; ++i) {
    std::string id = "xpyd-" + std::to_string(i);
    std::vector<int32_t> prompt = prompt_of(30 + i, 70 + i);
    Result expected = run(*prefiller_, "ref-" + id, prompt, kDecodeTokens);
    EXPECT_EQ(
        run(*decoders[size_t(i % 2)], "dec-" + id, prompt, kDecodeTokens, decode_params(id)).tokens,
        expected.tokens);
  }
  for (LlmEngine* d : decoders) {
    EngineStats s = wait_stats(*d, [](const EngineStats& s) {
      return s.prompt_tokens_computed >= 3 && s.kv_transfer.buffer_bytes_used == 0;
    });
    EXPECT_EQ(s.kv_transfer.transfers_received, uint64_t(kRequests / 2));
    EXPECT_EQ(s.kv_transfer.buffer_bytes_used, 0u);
  }
  EXPECT_EQ(second.stats().prompt_tokens_computed, 3u);  // one per request
}

TEST_P(KvConnectorTest, PromptLargerThanTheStagingBudgetIsAnAbort) {
  ProxyStub proxy;
  EngineConfig tx = engine_config(/*block_size=*/16, PrefixCaching::kDisabled);
  tx.kv_connector = connector_config(PdRole::kSender);
  tx.kv_connector->buffer_bytes = 4096;  // 3 tokens of stories260K's KV
  tx.kv_connector->proxy_host = test::kLoopbackHost;
  tx.kv_connector->proxy_port = proxy.port();
  tx.kv_transport = make_ucx_transport();
  LlmEngine small(tx);
  small.start();
  Result first = run(small, "pre-big", prompt_of(40, 7), 1, prefill_params("big", *receiver_));
  EXPECT_EQ(first.tokens.size(), 1u);
  WireMessage note = proxy.next();
  ASSERT_TRUE(std::holds_alternative<Abort>(note));
  EXPECT_EQ(std::get<Abort>(note).request_id, "big");
  EXPECT_NE(std::get<Abort>(note).reason.find("pd_buffer_size"), std::string::npos);
  EXPECT_EQ(decoder_->stats().kv_transfer.buffer_bytes_used, 0u);
}

// A decoder whose transfer buffer holds one 40-token prompt's pages (13 of 4 KiB) and not two,
// fed by its own prefiller whose staging holds one such prompt's KV (51,200 bytes) and not two:
// transfers back up on both sides as soon as two are in flight.
struct Backlog {
  explicit Backlog(PrefixCaching prefix) {
    EngineConfig rx = engine_config(/*block_size=*/8, prefix);
    rx.kv_connector = connector_config(PdRole::kReceiver);
    rx.kv_connector->buffer_bytes = 64 << 10;
    rx.kv_connector->peer = ReceiverAddress{test::kLoopbackHost, 0, 0};
    rx.kv_transport = make_ucx_transport();
    decoder = std::make_unique<LlmEngine>(rx);
    receiver = dynamic_cast<KvReceiver*>(decoder->kv_connector());
    if (receiver == nullptr) throw std::runtime_error("the decoder has no KvReceiver");
    decoder->start();
    EngineConfig tx = engine_config(/*block_size=*/16, PrefixCaching::kDisabled);
    tx.kv_connector = connector_config(PdRole::kSender);
    tx.kv_connector->buffer_bytes = 80'000;
    tx.kv_connector->proxy_host = test::kLoopbackHost;
    tx.kv_connector->proxy_port = proxy.port();
    tx.kv_transport = make_ucx_transport();
    prefiller = std::make_unique<LlmEngine>(tx);
    prefiller->start();
  }
  ProxyStub proxy;  // outlives both engines
  std::unique_ptr<LlmEngine> decoder, prefiller;
  KvReceiver* receiver = nullptr;
};

// A decoder that takes transfers more slowly than the prefiller computes prompts (its buffer holds
// one until a decode loads it) backs them up into the prefiller's staging, which holds one too:
// the prefiller's engine waits for room rather than aborting the third transfer (it aborted,
// "the prefiller's transfer staging is full", under a flood on an H200), and every decode then
// loads its prompt and answers as a plain engine.
TEST_P(KvConnectorTest, AFullStagingWaitsForRoomInsteadOfAborting) {
  Backlog b(GetParam());
  LlmEngine& decoder = *b.decoder;
  LlmEngine& prefiller = *b.prefiller;
  KvReceiver* receiver = b.receiver;
  ProxyStub& proxy = b.proxy;

  constexpr int kRequests = 3, kTokens = 8;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<Result> expected;
  for (int i = 0; i < kRequests; ++i) {
    prompts.push_back(prompt_of(40, 80 + i));
    expected.push_back(run(*prefiller_, "ref-" + std::to_string(i), prompts[i], kTokens));
  }
  std::vector<std::shared_ptr<RequestStream>> prefills;
  for (int i = 0; i < kRequests; ++i) {
    std::string id = "backed-" + std::to_string(i);
    prefills.push_back(submit(prefiller, "pre-" + id, prompts[i], 1, prefill_params(id, *receiver)));
  }
  // The transfers end in order, each once the decode before it has freed the decoder's buffer.
  for (int i = 0; i < kRequests; ++i) {
    WireMessage note = proxy.next();
    const auto* abort = std::get_if<Abort>(&note);
    ASSERT_EQ(abort, nullptr) << "transfer " << abort->request_id << " aborted: " << abort->reason;
    ASSERT_TRUE(std::holds_alternative<TransferDone>(note));
    const std::string id = std::get<TransferDone>(note).request_id;
    EXPECT_EQ(id, "backed-" + std::to_string(i));
    Result r = run(decoder, "dec-" + id, prompts[i], kTokens, decode_params(id));
    EXPECT_EQ(r.tokens, expected[i].tokens) << id;
  }
  for (auto& s : prefills) EXPECT_EQ(collect(*s).tokens.size(), 1u);
  EXPECT_EQ(prefiller.stats().kv_transfer.transfer_failures, 0u);
  EngineStats s = wait_stats(decoder, [](const EngineStats& s) {
    return s.num_running == 0 && s.kv_transfer.buffer_bytes_used == 0;
  });
  EXPECT_EQ(s.kv_transfer.transfers_received, uint64_t(kRequests));
  EXPECT_EQ(s.kv_transfer.prompt_tokens_received, uint64_t(kRequests * 39));
}

// A transfer the proxy abandons while the prefiller's engine waits for staging room for it ends
// the wait at once (its prefill answers), and is never sent; the others go on.
TEST_P(KvConnectorTest, ATransferAbandonedWhileWaitingForStagingEndsTheWait) {
  Backlog b(GetParam());
  LlmEngine& decoder = *b.decoder;
  LlmEngine& prefiller = *b.prefiller;
  KvReceiver* receiver = b.receiver;
  ProxyStub& proxy = b.proxy;

  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::shared_ptr<RequestStream>> prefills;
  for (int i = 0; i < 3; ++i) {
    prompts.push_back(prompt_of(40, 90 + i));
    std::string id = "wait-" + std::to_string(i);
    prefills.push_back(submit(prefiller, "pre-" + id, prompts[i], 1, prefill_params(id, *receiver)));
  }
  // wait-0 fills the decoder's buffer; wait-1 takes the staging once wait-0 is sent and waits for
  // the decoder; wait-2 waits for the staging until abandoned.
  WireMessage first = proxy.next();
  ASSERT_TRUE(std::holds_alternative<TransferDone>(first));
  EXPECT_EQ(std::get<TransferDone>(first).request_id, "wait-0");
  std::this_thread::sleep_for(200ms);
  const Clock::time_point abandoned = Clock::now();
  prefiller.kv_connector()->abort_transfer("wait-2");
  EXPECT_EQ(collect(*prefills[2]).tokens.size(), 1u);
  EXPECT_LT(Clock::now() - abandoned, 3s) << "the engine waited on for the abandoned transfer";
  EXPECT_EQ(run(decoder, "dec-wait-0", prompts[0], 4, decode_params("wait-0")).tokens.size(), 4u);
  WireMessage second = proxy.next();
  ASSERT_TRUE(std::holds_alternative<TransferDone>(second));
  EXPECT_EQ(std::get<TransferDone>(second).request_id, "wait-1");
  EXPECT_EQ(run(decoder, "dec-wait-1", prompts[1], 4, decode_params("wait-1")).tokens.size(), 4u);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(collect(*prefills[i]).tokens.size(), 1u);
  EngineStats s = wait_stats(decoder, [](const EngineStats& s) {
    return s.num_running == 0 && s.kv_transfer.buffer_bytes_used == 0;
  });
  EXPECT_EQ(s.kv_transfer.transfers_received, 2u);
  EXPECT_EQ(prefiller.stats().kv_transfer.transfers_sent, 2u);
}

// Eight transfers in flight at once into a decoder whose KV cache is too small for all its
// sequences: it preempts (and recomputes) some, and still answers exactly as a plain engine.
TEST_P(KvConnectorTest, ConcurrentTransfersAndPreemptedDecodes) {
  EngineConfig rx = engine_config(/*block_size=*/8, GetParam());
  rx.kv_cache_memory_bytes = 80 * 8 * 1280;  // 80 blocks of 8 tokens: 640 tokens
  rx.kv_connector = connector_config(PdRole::kReceiver);
  rx.kv_connector->peer = ReceiverAddress{test::kLoopbackHost, 0, 0};
  rx.kv_transport = make_ucx_transport();
  LlmEngine decoder(rx);
  ASSERT_EQ(decoder.stats().kv_blocks_total, 80);
  auto* receiver = dynamic_cast<KvReceiver*>(decoder.kv_connector());
  decoder.start();

  constexpr int kRequests = 8, kTokens = 40;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<Result> expected;
  uint64_t loadable = 0;
  for (int i = 0; i < kRequests; ++i) {
    prompts.push_back(prompt_of(20 + 13 * i, 50 + i));
    expected.push_back(run(*prefiller_, "ref-" + std::to_string(i), prompts[i], kTokens));
    loadable += prompts[i].size() - 1;
  }
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < kRequests; ++i) {
    std::string id = "many-" + std::to_string(i);
    streams.push_back(
        submit(*prefiller_, "pre-" + id, prompts[i], 1, prefill_params(id, *receiver)));
  }
  for (auto& s : streams) EXPECT_EQ(collect(*s).tokens.size(), 1u);
  for (int i = 0; i < kRequests; ++i) {
    WireMessage note = proxy_.next();
    EXPECT_TRUE(std::holds_alternative<TransferDone>(note));
  }
  streams.clear();
  for (int i = 0; i < kRequests; ++i) {
    std::string id = "many-" + std::to_string(i);
    streams.push_back(submit(decoder, "dec-" + id, prompts[i], kTokens, decode_params(id)));
  }
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(collect(*streams[i]).tokens, expected[i].tokens) << "request " << i;
  }
  EngineStats s = wait_stats(decoder, [](const EngineStats& s) {
    return s.num_running == 0 && s.kv_transfer.buffer_bytes_used == 0;
  });
  EXPECT_GT(s.num_preemptions, 0u) << "the test needs preemption to mean anything";
  if (GetParam() == PrefixCaching::kDisabled) {
    EXPECT_EQ(s.kv_transfer.prompt_tokens_received, loadable);
  } else {  // re-admitted preempted sequences hit the prefix cache too
    EXPECT_GT(s.kv_transfer.prompt_tokens_received, 0u);
    EXPECT_LE(s.kv_transfer.prompt_tokens_received, loadable);
  }
  EXPECT_EQ(s.kv_transfer.buffer_bytes_used, 0u);
  EXPECT_EQ(s.kv_transfer.transfers_received, uint64_t(kRequests));
}

INSTANTIATE_TEST_SUITE_P(PrefixCaching, KvConnectorTest,
                         testing::Values(PrefixCaching::kDisabled, PrefixCaching::kEnabled),
                         [](const auto& info) {
                           return info.param == PrefixCaching::kEnabled ? "PrefixCacheOn"
                                                                        : "PrefixCacheOff";
                         });

}  // namespace
}  // namespace tandem
