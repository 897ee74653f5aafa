// The KV tiers on a prefiller (a KvConnectorChain: tiers, then the PD sender), in one process
// with a decoder engine over UCX loopback and the test as the proxy's notification port. A
// second prompt sharing a prefix is prefilled from the prefiller's CPU tier — only its new
// tokens are computed there — and still arrives whole at the decoder, which computes one token
// and answers like a plain engine.
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "engine/llm_engine.h"
#include "engine/wait_for_stats.h"
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

constexpr int kPdChunk = 16;
constexpr int kPdDecodeTokens = 8;

EngineConfig pd_engine_config() {
  EngineConfig c;
  c.model_dir = test::golden_model("stories260K");
  c.num_threads = 1;
  c.kv_cache_memory_bytes = 4 << 20;
  c.enable_prefix_caching = false;  // only the tiers can serve a prefix
  return c;
}

KvConnectorConfig pd_connector_config(PdRole role) {
  return test::test_connector_config(role, kPdChunk);
}

std::vector<int32_t> run_tokens(LlmEngine& engine, const std::string& id,
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
  std::vector<int32_t> tokens;
  for (auto deadline = Clock::now() + 30s; Clock::now() < deadline;) {
    auto o = stream->pop(100ms);
    if (!o) continue;
    tokens.insert(tokens.end(), o->new_token_ids.begin(), o->new_token_ids.end());
    if (o->finish != FinishReason::kNone) return tokens;
  }
  ADD_FAILURE() << id << " did not finish";
  return tokens;
}

EngineStats wait_pd_stats(const LlmEngine& engine,
                          const std::function<bool(const EngineStats&)>& ready) {
  return test::wait_for_stats(engine, ready, 10s);
}

// BOS, a 96-token prefix shared by every `seed`, then 21 tokens of `seed`.
std::vector<int32_t> pd_prompt_of(int seed) {
  std::vector<int32_t> ids = {1};
  for (int i = 1; i < 96; ++i) ids.push_back(int32_t(3 + (i * 131) % 500));
  for (int i = 0; i < 21; ++i) ids.push_back(int32_t(3 + (i * 37 + seed * 977) % 500));
  return ids;
}

TEST(KvTiersOnAPrefiller, ReusedChunksStillReachTheDecoder) {
  ProxyStub proxy;  // outlives both engines
  EngineConfig rx = pd_engine_config();
  rx.kv_connector = pd_connector_config(PdRole::kReceiver);
  rx.kv_connector->peer = ReceiverAddress{test::kLoopbackHost, 0, 0};
  rx.kv_transport = make_ucx_transport();
  LlmEngine decoder(rx);
  auto* receiver = dynamic_cast<KvReceiver*>(decoder.kv_connector());
  ASSERT_NE(receiver, nullptr);

  EngineConfig tx = pd_engine_config();
  tx.kv_connector = pd_connector_config(PdRole::kSender);
  tx.kv_connector->proxy_host = test::kLoopbackHost;
  tx.kv_connector->proxy_port = proxy.port();
  tx.kv_transport = make_ucx_transport();
  KvStoreConfig tiers;
  tiers.chunk_size = kPdChunk;
  tiers.store.cpu_bytes = 16 << 20;
  tx.kv_store = tiers;
  LlmEngine prefiller(tx);
  decoder.start();
  prefiller.start();

  LlmEngine plain(pd_engine_config());
  plain.start();
  for (int seed = 1; seed <= 2; ++seed) {
    SCOPED_TRACE(testing::Message() << "prompt " << seed);
    const std::vector<int32_t> prompt = pd_prompt_of(seed);
    const std::string id = "xfer-" + std::to_string(seed);
    const std::vector<int32_t> expected = run_tokens(plain, "ref-" + id, prompt, kPdDecodeTokens);

    EngineStats tx_before = wait_pd_stats(prefiller, [](const EngineStats&) { return true; });
    KvTransferParams prefill{
        DisaggSpec{id, test::kLoopbackHost, {receiver->init_port()}, {receiver->alloc_port()}},
        std::nullopt};
    ASSERT_EQ(run_tokens(prefiller, "pre-" + id, prompt, 1, prefill).size(), 1u);
    WireMessage note = proxy.next();
    ASSERT_TRUE(std::holds_alternative<TransferDone>(note))
        << (std::holds_alternative<Abort>(note) ? std::get<Abort>(note).reason : "");
    EngineStats tx_after = wait_pd_stats(prefiller, [&](const EngineStats& s) {
      return s.prompt_tokens_computed > tx_before.prompt_tokens_computed;
    });
    const uint64_t computed = tx_after.prompt_tokens_computed - tx_before.prompt_tokens_computed;
    const uint64_t hits =
        tx_after.kv_transfer.tiers.cpu.hit_tokens - tx_before.kv_transfer.tiers.cpu.hit_tokens;
    if (seed == 1) {
      EXPECT_EQ(computed, prompt.size());
      EXPECT_EQ(hits, 0u);
    } else {
      EXPECT_EQ(hits, 96u);  // six 16-token chunks from the CPU tier
      EXPECT_EQ(computed, prompt.size() - 96);
    }

    EngineStats rx_before = decoder.stats();
    EXPECT_EQ(run_tokens(decoder, "dec-" + id, prompt, kPdDecodeTokens,
                         KvTransferParams{DisaggSpec{id, {}, {}, {}}, std::nullopt}),
              expected);
    EngineStats rx_after = wait_pd_stats(decoder, [&](const EngineStats& s) {
      return s.generation_tokens >= rx_before.generation_tokens + kPdDecodeTokens;
    });
    EXPECT_EQ(rx_after.prompt_tokens_computed - rx_before.prompt_tokens_computed, 1u);
    EXPECT_EQ(
        rx_after.kv_transfer.prompt_tokens_received - rx_before.kv_transfer.prompt_tokens_received,
        prompt.size() - 1);
  }
  EXPECT_EQ(prefiller.stats().kv_transfer.transfers_sent, 2u);
  EXPECT_FALSE(decoder.stats().kv_transfer.tiers.cpu_enabled);
}

}  // namespace
}  // namespace tandem
