// The proxy's side of the KV-transfer notifications: prefillers connect to the proxy port
// (pd_proxy_host:pd_proxy_port) over Tandem's UCX transport, say Hello, and send
// TransferDone{request_id} or Abort{request_id, reason} for each request they pushed.
// NotificationHub matches them to the requests waiting, whichever comes first (a notification
// may beat the prefiller's HTTP answer); NotificationListener accepts the connections and feeds
// the hub, one thread per prefiller connection.
#pragma once
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "transfer/peer_allowlist.h"
#include "transfer/transport.h"

namespace tandem {

enum class TransferResult { kDone, kAborted };

struct TransferOutcome {
  TransferResult result = TransferResult::kDone;
  std::string reason;  // kAborted: the prefiller's reason
};

// Thread-safe. A notification for an id nobody waits for yet is kept for `keep_unclaimed`, so a
// waiter that registers a little later still gets it; after that it is dropped (never leaked).
class NotificationHub {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void(const TransferOutcome&)>;

  explicit NotificationHub(std::chrono::milliseconds keep_unclaimed);

  // Calls `on_outcome` once — at once (on this thread) if the notification already arrived,
  // else from the thread that delivers it — unless forget(id) comes first.
  void expect(const std::string& id, Callback on_outcome);
  // Drops the waiter or the kept notification of `id`.
  void forget(const std::string& id);
  // A notification arrived (the first one for an id wins).
  void deliver(const std::string& id, const TransferOutcome& outcome);

  // Drops every waiter and kept notification (at shutdown).
  void clear();

  size_t num_waiting() const;
  size_t num_unclaimed() const;

 private:
  void drop_expired(Clock::time_point now);  // needs mutex_

  std::chrono::milliseconds keep_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Callback> waiting_;
  std::unordered_map<std::string, TransferOutcome> unclaimed_;
  std::deque<std::pair<Clock::time_point, std::string>> unclaimed_order_;  // arrival order
};

// Listens on host:port with `transport` and delivers what prefillers send into `hub`; stops
// and joins its threads on destruction. Throws TransportError if the port is taken.
class NotificationListener {
 public:
  // `allowed`: the prefillers' hosts (connections from elsewhere are refused unread).
  NotificationListener(Transport& transport, const std::string& host, uint16_t port,
                       NotificationHub& hub, PeerAllowlist allowed = {});
  ~NotificationListener();
  NotificationListener(const NotificationListener&) = delete;
  NotificationListener& operator=(const NotificationListener&) = delete;

  uint16_t port() const { return port_; }
  size_t num_connections() const { return connections_open_.load(); }

 private:
  struct Peer {
    std::thread thread;
    std::atomic<bool> finished{false};
  };
  void accept_loop();
  void serve(Connection& connection);
  void reap_finished();  // joins the threads of closed connections

  NotificationHub& hub_;
  PeerAllowlist allowed_;
  std::unique_ptr<Listener> listener_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> connections_open_{0};
  std::list<Peer> peers_;  // touched by the accept thread only, and the destructor after it
  std::thread accept_thread_;
};

}  // namespace tandem
