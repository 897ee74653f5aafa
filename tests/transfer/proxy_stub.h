// ProxyStub: the proxy's notification port, played by a test. It accepts the prefiller's
// connection, answers its Hello, and hands out the TransferDone and Abort messages that follow
// (heartbeats skipped).
#pragma once
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>

#include "transfer/transport.h"
#include "transfer/ucx_transport.h"
#include "transfer/wire_protocol.h"

namespace tandem::test {

class ProxyStub {
 public:
  // `timeout`: how long next() waits for the prefiller to connect, and then for a message.
  explicit ProxyStub(std::chrono::seconds timeout = std::chrono::seconds(20))
      : timeout_(timeout), transport_(make_ucx_transport()),
        listener_(transport_->listen("127.0.0.1", 0)) {}
  int port() const { return listener_->port(); }

  // The next TransferDone or Abort.
  WireMessage next() {
    using namespace std::chrono_literals;
    if (!connection_) {
      connection_ = listener_->accept(timeout_);
      if (!connection_) throw std::runtime_error("the prefiller never connected to the proxy");
      auto hello = recv_message(*connection_, 10s);
      if (!hello || !std::holds_alternative<Hello>(*hello)) throw std::runtime_error("no Hello");
      send_message(*connection_,
                   HelloAck{kWireVersion, HelloStatus::kOk, "proxy", 0, 0, 0, {}, ""});
    }
    for (auto deadline = std::chrono::steady_clock::now() + timeout_;
         std::chrono::steady_clock::now() < deadline;) {
      auto m = recv_message(*connection_, 100ms);
      if (m && !std::holds_alternative<Heartbeat>(*m)) return *m;
    }
    throw std::runtime_error("no notification within " + std::to_string(timeout_.count()) + " s");
  }

 private:
  std::chrono::seconds timeout_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Connection> connection_;
};

}  // namespace tandem::test
