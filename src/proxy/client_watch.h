// ClientWatch: notices that a client hung up while its request is in flight. While the proxy
// waits on engines it is not reading from the client, so a watcher coroutine reads the
// client's socket meanwhile: bytes that arrive (a pipelined next request) are kept in the
// connection's buffer; an end of stream or an error means the client left, and the upstream
// call in progress is closed (that is how the engines learn to abort) and the request's waits
// are woken. Lives on the connection's strand.
#pragma once
#include <memory>
#include <optional>

#include "proxy/async_io.h"
#include "proxy/transfer_notifications.h"
#include "proxy/upstream_client.h"

namespace tandem {

class ClientWatch : public std::enable_shared_from_this<ClientWatch> {
 public:
  explicit ClientWatch(const net::any_io_executor& executor)
      : executor_(executor), wake_(executor), watcher_done_(executor) {}

  const net::any_io_executor& executor() const { return executor_; }

  // Starts the watcher on `stream` (which must have no read pending), storing what it reads
  // in `buffer`; both must outlive stop().
  void start(beast::tcp_stream& stream, beast::flat_buffer& buffer);
  // Ends the watcher (cancelling the socket's pending operations) and waits until it has.
  Task<void> stop();

  bool client_gone() const { return client_gone_; }
  // The upstream call to close if the client leaves (nullptr: none in progress).
  void set_upstream(UpstreamCall* call) { upstream_ = call; }
  // Wakes whoever waits in wait_wake (a notification arrived, or the client left).
  void poke() { wake_.poke(); }
  Task<void> wait_wake(SteadyClock::time_point deadline) { return wake_.wait(deadline); }

  // The KV-transfer outcome of the request, set from a NotificationHub callback via post.
  std::optional<TransferOutcome> outcome;

 private:
  static Task<void> watch(std::shared_ptr<ClientWatch> self, beast::tcp_stream& stream,
                          beast::flat_buffer& buffer);
  void client_left();

  net::any_io_executor executor_;
  AsyncEvent wake_;
  AsyncEvent watcher_done_;
  beast::tcp_stream* stream_ = nullptr;
  UpstreamCall* upstream_ = nullptr;
  bool watching_ = false;
  bool stopping_ = false;
  bool client_gone_ = false;
};

// Points `watch` at `call` for the life of this guard.
class UpstreamGuard {
 public:
  UpstreamGuard(ClientWatch& watch, UpstreamCall& call) : watch_(watch) { watch_.set_upstream(&call); }
  ~UpstreamGuard() { watch_.set_upstream(nullptr); }
  UpstreamGuard(const UpstreamGuard&) = delete;
  UpstreamGuard& operator=(const UpstreamGuard&) = delete;

 private:
  ClientWatch& watch_;
};

}  // namespace tandem
