// SenderChannel's connections to the decoder its LMCache config names (pd_peer_*): opened at
// startup, before any transfer asks for them; a decoder that is not listening yet is tried again
// quietly and holds nothing up.
#include "transfer/sender_channel.h"

#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "engine/llm_engine.h"
#include "test_support.h"
#include "transfer/kv_receiver.h"
#include "transfer/test_connector_config.h"
#include "transfer/ucx_transport.h"

namespace tandem {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A decoder engine (pd_role receiver) listening on free ports over UCX loopback.
struct Decoder {
  Decoder() {
    EngineConfig c;
    c.model_dir = test::golden_model("stories260K");
    c.num_threads = 1;
    c.block_size = 16;
    c.kv_cache_memory_bytes = 4 << 20;
    c.kv_connector = test::test_connector_config(PdRole::kReceiver, 16);
    c.kv_connector->peer = ReceiverAddress{"127.0.0.1", 0, 0};
    c.kv_transport = make_ucx_transport();
    engine = std::make_unique<LlmEngine>(c);
    receiver = dynamic_cast<KvReceiver*>(engine->kv_connector());
  }
  std::unique_ptr<LlmEngine> engine;
  KvReceiver* receiver = nullptr;
};

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  for (auto deadline = Clock::now() + timeout; Clock::now() < deadline;) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

TEST(SenderChannelEarlyConnect, OpensTheConfiguredDecodersLinksBeforeAnyTransfer) {
  Decoder decoder;
  ASSERT_NE(decoder.receiver, nullptr);
  KvConnectorConfig config = test::test_connector_config(PdRole::kSender, 16);
  config.peer =
      ReceiverAddress{"localhost", decoder.receiver->init_port(), decoder.receiver->alloc_port()};
  SenderChannel channel(config, make_ucx_transport());
  EXPECT_TRUE(wait_until([&] { return channel.stats().connections == 1; }, 10s))
      << channel.stats().connections << " connections";
  std::this_thread::sleep_for(200ms);  // and only once
  EXPECT_EQ(channel.stats().connections, 1u);
}

TEST(SenderChannelEarlyConnect, ADecoderNotListeningYetIsJoinedWhenItIs) {
  // Ports nobody listens on yet: the channel keeps trying without holding up its destruction.
  const Clock::time_point start = Clock::now();
  {
    KvConnectorConfig config = test::test_connector_config(PdRole::kSender, 16);
    config.peer =
        ReceiverAddress{"127.0.0.1", uint16_t(test::closed_port()), uint16_t(test::closed_port())};
    config.heartbeat_interval = 50ms;
    SenderChannel channel(config, make_ucx_transport());
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(channel.stats().connections, 0u);
  }
  EXPECT_LT(Clock::now() - start, 3s);
}

}  // namespace
}  // namespace tandem
