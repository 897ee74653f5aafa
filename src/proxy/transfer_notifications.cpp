// NotificationHub (waiters and early arrivals) and NotificationListener (the UCX accept loop and
// one reader thread per prefiller connection).
#include "proxy/transfer_notifications.h"

#include "core/logging.h"
#include "transfer/wire_codec.h"

namespace tandem {
namespace {

using namespace std::chrono_literals;

constexpr auto kPollInterval = 200ms;  // how often blocked threads look at the stop flag
constexpr auto kHelloTimeout = 10s;     // a refused peer's first frame, awaited before the refusal
constexpr size_t kMaxPeers = 1024;

}  // namespace

NotificationHub::NotificationHub(std::chrono::milliseconds keep_unclaimed) : keep_(keep_unclaimed) {}

void NotificationHub::expect(const std::string& id, Callback on_outcome) {
  std::unique_lock lock(mutex_);
  drop_expired(Clock::now());  // on both paths in, so no stale outcome outlives quiet spells
  auto it = unclaimed_.find(id);
  if (it == unclaimed_.end()) {
    waiting_[id] = std::move(on_outcome);
    return;
  }
  TransferOutcome outcome = std::move(it->second);
  unclaimed_.erase(it);
  lock.unlock();
  on_outcome(outcome);
}

void NotificationHub::forget(const std::string& id) {
  std::lock_guard lock(mutex_);
  waiting_.erase(id);
  unclaimed_.erase(id);  // its unclaimed_order_ entry goes when it expires
}

void NotificationHub::deliver(const std::string& id, const TransferOutcome& outcome) {
  std::unique_lock lock(mutex_);
  Clock::time_point now = Clock::now();
  drop_expired(now);
  auto it = waiting_.find(id);
  if (it == waiting_.end()) {
    if (unclaimed_.emplace(id, outcome).second) unclaimed_order_.emplace_back(now, id);
    return;
  }
  Callback callback = std::move(it->second);
  waiting_.erase(it);
  lock.unlock();
  callback(outcome);
}

void NotificationHub::drop_expired(Clock::time_point now) {
  while (!unclaimed_order_.empty() && now - unclaimed_order_.front().first > keep_) {
    unclaimed_.erase(unclaimed_order_.front().second);
    unclaimed_order_.pop_front();
  }
}

void NotificationHub::clear() {
  std::unordered_map<std::string, Callback> waiting;
  {
    std::lock_guard lock(mutex_);
    waiting.swap(waiting_);
    unclaimed_.clear();
    unclaimed_order_.clear();
  }
}

size_t NotificationHub::num_waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_.size();
}

size_t NotificationHub::num_unclaimed() const {
  std::lock_guard lock(mutex_);
  return unclaimed_.size();
}

NotificationListener::NotificationListener(Transport& transport, const std::string& host,
                                           uint16_t port, NotificationHub& hub,
                                           PeerAllowlist allowed)
    : hub_(hub),
      allowed_(std::move(allowed)),
      listener_(transport.listen(host, port)),
      port_(listener_->port()) {
  accept_thread_ = std::thread([this] { accept_loop(); });
}

NotificationListener::~NotificationListener() {
  stopping_ = true;
  accept_thread_.join();
  for (Peer& peer : peers_) peer.thread.join();
}

void NotificationListener::reap_finished() {
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (it->finished) {
      it->thread.join();
      it = peers_.erase(it);
    } else {
      ++it;
    }
  }
}

void NotificationListener::accept_loop() {
  while (!stopping_) {
    std::unique_ptr<Connection> connection;
    try {
      connection = listener_->accept(kPollInterval);
    } catch (const std::exception& e) {
      log_warning("proxy notification port {}: accept failed: {}", port_, e.what());
      continue;
    }
    reap_finished();
    if (!connection) continue;
    if (peers_.size() >= kMaxPeers) {
      log_warning("proxy notification port {}: {} connections open; refusing {}", port_,
                  peers_.size(), connection->peer_name());
      connection->close();
      continue;
    }
    Peer& peer = peers_.emplace_back();
    peer.thread = std::thread([this, &peer, c = std::move(connection)]() mutable {
      ++connections_open_;
      serve(*c);
      c->close();
      --connections_open_;
      peer.finished = true;
    });
  }
}

// Hello -> HelloAck{ok, no buffer}; then TransferDone / Abort / Heartbeat until the peer leaves.
void NotificationListener::serve(Connection& connection) {
  const std::string peer = connection.peer_name();
  bool greeted = false;
  try {
    if (!allowed_.allows(connection.peer_address())) {
      (void)connection.recv(kHelloTimeout);  // its Hello, not decoded (see ReceiverServer::greet)
      std::string why = fmt::format("{} is not in {}", connection.peer_address(),
                                    allowed_.description());
      log_warning("proxy notification port {}: refused {}: {}", port_, peer, why);
      refuse_peer(connection, HelloAck{kWireVersion, HelloStatus::kRefused, "tandem-proxy", 0, 0, 0,
                                       {}, "refused: " + why});
      return;
    }
    while (!stopping_) {
      std::optional<WireMessage> message = recv_message(connection, kPollInterval);
      if (!message) continue;
      if (auto* hello = std::get_if<Hello>(&*message)) {
        send_message(connection, HelloAck{kWireVersion, HelloStatus::kOk, "tandem-proxy", 0, 0,
                                          0, {}, ""});
        log_info("proxy notification port {}: {} connected ({})", port_, hello->peer_id, peer);
        greeted = true;
      } else if (!greeted) {
        log_warning("proxy notification port {}: {} sent {} before Hello; closing", port_, peer,
                    message_type_name(message_type(*message)));
        return;
      } else if (auto* done = std::get_if<TransferDone>(&*message)) {
        hub_.deliver(done->request_id, {TransferResult::kDone, ""});
      } else if (auto* abort = std::get_if<Abort>(&*message)) {
        hub_.deliver(abort->request_id, {TransferResult::kAborted, abort->reason});
      } else if (!std::holds_alternative<Heartbeat>(*message)) {
        log_warning("proxy notification port {}: {} sent an unexpected {}; closing", port_, peer,
                    message_type_name(message_type(*message)));
        return;
      }
    }
  } catch (const WireError& e) {
    log_warning("proxy notification port {}: {} sent a bad frame: {}", port_, peer, e.what());
  } catch (const TransportError& e) {
    log_debug("proxy notification port {}: {} left: {}", port_, peer, e.what());
  }
}

}  // namespace tandem
