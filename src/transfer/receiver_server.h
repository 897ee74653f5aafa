// ReceiverServer: the decoder's side of the transfer channel. It listens on the init port
// (Hello -> HelloAck announcing the registered buffer; senders then put into it) and the alloc
// port (AllocRequest -> AllocResponse, TransferDone, Abort, Heartbeats both ways), one thread per
// listener and per connection, and a reaper thread that frees pages nobody loaded within the
// timeout. A sender silent past the heartbeat timeout loses its connection, and with it the pages
// it was still writing. Everything
// about pages and chunks is the ReceiverRegistry's.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "transfer/peer_allowlist.h"
#include "transfer/receiver_registry.h"
#include "transfer/transport.h"

namespace tandem {

struct ReceiverServerParams {
  std::string host;    // where both listeners bind
  int init_port = 0;   // 0: any free port
  int alloc_port = 0;  // 0: any free port
  std::string peer_id;
  uint32_t page_size = 4096;  // as the registry's, announced in the HelloAck
  PeerAllowlist allowed_peers;  // who may connect (default: anyone)
  // Liveness on the alloc port: a Heartbeat to the sender this often; a sender silent (no
  // message, no Heartbeat) this long is taken for dead or hung, and its connection closed.
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{15000};
};

class ReceiverServer {
 public:
  // Binds both ports and starts serving; throws TransportError if a port is taken. `transport`,
  // `buffer` and `registry` must outlive the server.
  ReceiverServer(Transport& transport, RegisteredBuffer& buffer, ReceiverRegistry& registry,
                 const ReceiverServerParams& params);
  ~ReceiverServer();  // stops every thread (within a few hundred milliseconds) and closes
  ReceiverServer(const ReceiverServer&) = delete;
  ReceiverServer& operator=(const ReceiverServer&) = delete;

  uint16_t init_port() const { return init_listener_->port(); }
  uint16_t alloc_port() const { return alloc_listener_->port(); }

 private:
  enum class PortKind { kInit, kAlloc };
  struct Worker {
    std::jthread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  void accept_loop(Listener& listener, PortKind kind);
  void serve(Connection& connection, PortKind kind);
  // Answers the caller's Hello; false (connection to close) when it is not a sender's.
  bool greet(Connection& connection, PortKind kind);
  // `writing`: ids allocated on this connection whose TransferDone has not come yet.
  void serve_alloc_message(Connection& connection, const WireMessage& message,
                           std::set<std::string>& writing);
  void reap_loop();
  void prune_workers();  // joins finished connection threads

  RegisteredBuffer& buffer_;
  ReceiverRegistry& registry_;
  ReceiverServerParams params_;
  std::unique_ptr<Listener> init_listener_;
  std::unique_ptr<Listener> alloc_listener_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;  // guards workers_, wakes the reaper
  std::condition_variable cv_;
  std::list<Worker> workers_;
  std::jthread init_thread_, alloc_thread_, reaper_thread_;
};

}  // namespace tandem
