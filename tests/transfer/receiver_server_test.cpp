// A live ReceiverServer (the decoder's init and alloc ports over UCX, on free loopback ports)
// facing hostile peers: hosts outside the allowlist are refused before anything they send is
// read; a non-sender, a first message that is not a Hello, and a frame whose payload does not
// decode each end only their own connection; TransferDone and Abort for request ids the
// connection never allocated (unknown, or another sender's) change nothing; oversized and
// foreign-layout allocations are refused. After each, a well-behaved sender is still served.
#include "transfer/receiver_server.h"

#include <gtest/gtest.h>

#include "transfer/ucx_transport.h"

namespace tandem {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kServerPage = 4096;
constexpr size_t kBufferBytes = 64 * kServerPage;
constexpr auto kServerTimeout = 10s;
const LayoutFingerprint kLayout = {7, 7, 7};

BlockHash key(int i) {
  BlockHash h;
  h.bytes[0] = uint8_t(i);
  h.bytes[3] = 0xA5;
  return h;
}

AllocRequest alloc(const std::string& id, uint64_t bytes = 3 * kServerPage) {
  return AllocRequest{id, kLayout, {{key(int(id.size())), 16, bytes}}};
}

class LiveReceiver : public ::testing::Test {
 protected:
  void start(PeerAllowlist allowed = PeerAllowlist({"127.0.0.1", "::1"}, "pd_allowed_peer_hosts")) {
    buffer_ = server_transport_->allocate_buffer(kBufferBytes);
    registry_ = std::make_unique<ReceiverRegistry>(buffer_->size(), kServerPage, kLayout, 30s);
    server_ = std::make_unique<ReceiverServer>(
        *server_transport_, *buffer_, *registry_,
        ReceiverServerParams{"127.0.0.1", 0, 0, "test-receiver", kServerPage, std::move(allowed)});
  }

  std::unique_ptr<Connection> dial(bool init_port) {
    return client_transport_->connect(
        "127.0.0.1", init_port ? server_->init_port() : server_->alloc_port(), kServerTimeout);
  }

  // Connects and says Hello as `role`; the HelloAck.
  HelloAck greet(Connection& c, PeerRole role = PeerRole::kSender) {
    send_message(c, Hello{kWireVersion, role, "test-sender"});
    return next<HelloAck>(c);
  }

  template <typename T>
  T next(Connection& c) {
    std::optional<WireMessage> m = recv_message(c, kServerTimeout);
    if (!m) throw std::runtime_error("no answer within the timeout");
    if (!std::holds_alternative<T>(*m)) {
      throw std::runtime_error(std::string("unexpected ") + message_type_name(message_type(*m)));
    }
    return std::get<T>(*m);
  }

  // The receiver closes the connection within the timeout.
  static bool closed_by_peer(Connection& c) {
    auto deadline = std::chrono::steady_clock::now() + kServerTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        (void)c.recv(100ms);
      } catch (const std::exception&) {
        return true;
      }
      if (c.is_broken()) return true;
    }
    return false;
  }

  // A well-behaved sender still gets room on a fresh connection, then frees it.
  void expect_still_serving(const std::string& id) {
    auto c = dial(false);
    ASSERT_EQ(greet(*c).status, HelloStatus::kOk);
    send_message(*c, alloc(id));
    AllocResponse r = next<AllocResponse>(*c);
    EXPECT_EQ(r.status, AllocStatus::kOk) << r.message;
    send_message(*c, Abort{id, "test done"});
    c->close();
  }

  std::unique_ptr<Transport> server_transport_ = make_ucx_transport();
  std::unique_ptr<Transport> client_transport_ = make_ucx_transport();
  std::unique_ptr<RegisteredBuffer> buffer_;
  std::unique_ptr<ReceiverRegistry> registry_;
  std::unique_ptr<ReceiverServer> server_;
};

TEST_F(LiveReceiver, RefusesHostsOutsideTheAllowlistOnBothPorts) {
  start(PeerAllowlist({"192.0.2.7"}, "pd_allowed_peer_hosts"));  // not this host
  for (bool init : {true, false}) {
    auto c = dial(init);
    HelloAck ack = greet(*c);
    EXPECT_EQ(ack.status, HelloStatus::kRefused);
    EXPECT_NE(ack.message.find("pd_allowed_peer_hosts (192.0.2.7)"), std::string::npos)
        << ack.message;
    EXPECT_EQ(ack.buffer_size, 0u);  // nothing about the buffer leaks to a stranger
    EXPECT_TRUE(ack.rkey.empty());
    EXPECT_TRUE(closed_by_peer(*c));
  }
}

TEST_F(LiveReceiver, AcceptsLoopbackByDefaultAndAnyoneWithAStar) {
  start();
  auto c = dial(true);
  HelloAck ack = greet(*c);
  EXPECT_EQ(ack.status, HelloStatus::kOk) << ack.message;
  EXPECT_EQ(ack.buffer_size, kBufferBytes);
  c->close();
  server_.reset();
  start(PeerAllowlist({"*"}, "pd_allowed_peer_hosts"));
  expect_still_serving("star");
}

TEST_F(LiveReceiver, NonSenderAndMessagesBeforeHelloEndTheirConnectionOnly) {
  start();
  auto receiver = dial(false);
  EXPECT_EQ(greet(*receiver, PeerRole::kReceiver).status, HelloStatus::kRefused);
  EXPECT_TRUE(closed_by_peer(*receiver));

  auto rude = dial(false);
  send_message(*rude, alloc("rude"));
  EXPECT_TRUE(closed_by_peer(*rude));
  EXPECT_FALSE(registry_->is_writing("rude"));
  expect_still_serving("after-rude");
}

TEST_F(LiveReceiver, UndecodablePayloadsEndTheirConnectionOnly) {
  start();
  // Valid headers and CRCs around payloads that lie: a string longer than the payload, a chunk
  // count far past the bytes left, a role byte out of range, trailing bytes.
  std::vector<std::vector<uint8_t>> payloads = {
      {0x01, 0x00, 0x01, 0xFF, 0xFF, 'x'},
      {0x01, 0x00, 'r', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F},
      {0x01, 0x00, 0x09, 0x01, 0x00, 'p'},
      {0x01, 0x00, 0x01, 0x01, 0x00, 'p', 0xEE}};
  std::vector<MessageType> types = {MessageType::kHello, MessageType::kAllocRequest,
                                    MessageType::kHello, MessageType::kHello};
  for (size_t i = 0; i < payloads.size(); ++i) {
    SCOPED_TRACE(i);
    auto c = dial(false);
    if (types[i] != MessageType::kHello) {
      ASSERT_EQ(greet(*c).status, HelloStatus::kOk);
    }
    WireWriter w;
    w.u32(kWireMagic);
    w.u16(kWireVersion);
    w.u16(uint16_t(types[i]));
    w.u32(uint32_t(payloads[i].size()));
    w.u32(crc32c(payloads[i]));
    w.raw(payloads[i]);
    ASSERT_THROW((void)decode_message(w.bytes()), WireError);
    c->send(w.bytes());
    EXPECT_TRUE(closed_by_peer(*c));
  }
  expect_still_serving("after-garbage");
}

TEST_F(LiveReceiver, DoneAndAbortForIdsTheConnectionDidNotAllocateChangeNothing) {
  start();
  auto owner = dial(false);
  ASSERT_EQ(greet(*owner).status, HelloStatus::kOk);
  send_message(*owner, alloc("mine"));
  ASSERT_EQ(next<AllocResponse>(*owner).status, AllocStatus::kOk);
  ASSERT_TRUE(registry_->is_writing("mine"));

  auto other = dial(false);
  ASSERT_EQ(greet(*other).status, HelloStatus::kOk);
  send_message(*other, Abort{"mine", "not yours"});
  send_message(*other, TransferDone{"mine", {key(4)}});
  send_message(*other, TransferDone{"no-such-id", {key(1)}});
  send_message(*other, Abort{"no-such-id", ""});
  // Messages on one connection are served in order: once this is answered, the four above were.
  send_message(*other, alloc("probe"));
  ASSERT_EQ(next<AllocResponse>(*other).status, AllocStatus::kOk);
  EXPECT_TRUE(registry_->is_writing("mine")) << "another connection's Abort/Done was obeyed";

  send_message(*owner, Abort{"mine", "done"});
  send_message(*owner, alloc("owner-probe"));
  ASSERT_EQ(next<AllocResponse>(*owner).status, AllocStatus::kOk);
  EXPECT_FALSE(registry_->is_writing("mine"));
}

TEST_F(LiveReceiver, OversizedAndForeignLayoutAllocationsAreRefused) {
  start();
  auto c = dial(false);
  ASSERT_EQ(greet(*c).status, HelloStatus::kOk);
  send_message(*c, alloc("huge", kBufferBytes * 2));
  EXPECT_EQ(next<AllocResponse>(*c).status, AllocStatus::kError);
  AllocRequest foreign = alloc("foreign");
  foreign.layout_fingerprint[0] ^= 1;
  send_message(*c, foreign);
  EXPECT_EQ(next<AllocResponse>(*c).status, AllocStatus::kError);
  EXPECT_FALSE(registry_->is_writing("huge"));
  EXPECT_FALSE(registry_->is_writing("foreign"));
  expect_still_serving("after-refusals");
}

}  // namespace
}  // namespace tandem
