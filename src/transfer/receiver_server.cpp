// ReceiverServer: accept loops, the Hello exchange, the alloc-port message loop and the reaper.
#include "transfer/receiver_server.h"

#include "core/error.h"
#include "core/logging.h"

namespace tandem {
namespace {

using namespace std::chrono_literals;

constexpr auto kPollInterval = 100ms;  // how often loops look at the stop flag
constexpr auto kHelloTimeout = 10s;
constexpr auto kReapInterval = 250ms;

const char* port_name(bool init) { return init ? "init" : "alloc"; }

}  // namespace

ReceiverServer::ReceiverServer(Transport& transport, RegisteredBuffer& buffer,
                               ReceiverRegistry& registry, const ReceiverServerParams& params)
    : buffer_(buffer), registry_(registry), params_(params) {
  init_listener_ = transport.listen(params.host, uint16_t(params.init_port));
  alloc_listener_ = transport.listen(params.host, uint16_t(params.alloc_port));
  init_thread_ = std::jthread([this] { accept_loop(*init_listener_, PortKind::kInit); });
  alloc_thread_ = std::jthread([this] { accept_loop(*alloc_listener_, PortKind::kAlloc); });
  reaper_thread_ = std::jthread([this] { reap_loop(); });
}

ReceiverServer::~ReceiverServer() {
  stopping_ = true;
  cv_.notify_all();
  init_thread_ = {};  // joins
  alloc_thread_ = {};
  reaper_thread_ = {};
  std::lock_guard lock(mutex_);
  workers_.clear();  // joins every connection thread
}

void ReceiverServer::accept_loop(Listener& listener, PortKind kind) {
  while (!stopping_) {
    std::unique_ptr<Connection> connection;
    try {
      connection = listener.accept(kPollInterval);
    } catch (const std::exception& e) {
      log_warning("kv receiver: accepting on the {} port failed: {}",
                  port_name(kind == PortKind::kInit), e.what());
      continue;
    }
    prune_workers();
    if (!connection) continue;
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::lock_guard lock(mutex_);
    workers_.push_back(
        {std::jthread([this, kind, done, c = std::shared_ptr<Connection>(std::move(connection))] {
           serve(*c, kind);
           c->close();
           *done = true;
         }),
         done});
  }
}

void ReceiverServer::prune_workers() {
  std::lock_guard lock(mutex_);
  workers_.remove_if([](const Worker& w) { return w.done->load(); });
}

bool ReceiverServer::greet(Connection& connection, PortKind kind) {
  if (!params_.allowed_peers.allows(connection.peer_address())) {
    // Refused without decoding anything it sent; the HelloAck tells an honest sender why. The
    // first frame is awaited (not decoded): UCX cannot yet send on an endpoint whose peer has
    // sent nothing.
    (void)connection.recv(kHelloTimeout);
    std::string why = fmt::format("{} is not in {}", connection.peer_address(),
                                  params_.allowed_peers.description());
    log_warning("kv receiver: refused a connection from {} on the {} port: {}",
                connection.peer_name(), port_name(kind == PortKind::kInit), why);
    refuse_peer(connection, HelloAck{kWireVersion, HelloStatus::kRefused, params_.peer_id, 0, 0, 0,
                                     {}, "refused: " + why});
    return false;
  }
  std::optional<WireMessage> first = recv_message(connection, kHelloTimeout);
  const auto* hello = first ? std::get_if<Hello>(&*first) : nullptr;
  if (!hello) {
    log_warning("kv receiver: {} connection from {} sent no Hello; closing",
                port_name(kind == PortKind::kInit), connection.peer_name());
    return false;
  }
  HelloAck ack{kWireVersion, HelloStatus::kOk, params_.peer_id, 0, 0, 0, {}, ""};
  if (hello->role != PeerRole::kSender) {
    ack.status = HelloStatus::kRefused;
    ack.message = "this port serves KV senders only";
  } else if (kind == PortKind::kInit) {
    RemoteBufferInfo info = buffer_.remote_info();
    ack.buffer_address = info.address;
    ack.buffer_size = info.size;
    ack.page_size = params_.page_size;
    ack.rkey = std::move(info.rkey);
  }
  if (ack.status != HelloStatus::kOk) {
    refuse_peer(connection, ack);
    return false;
  }
  send_message(connection, ack);
  log_info("kv receiver: sender '{}' connected to the {} port", hello->peer_id,
           port_name(kind == PortKind::kInit));
  return true;
}

void ReceiverServer::serve(Connection& connection, PortKind kind) {
  using Clock = std::chrono::steady_clock;
  std::set<std::string> writing;
  try {
    if (!greet(connection, kind)) return;
    Clock::time_point last_heard = Clock::now(), last_sent = Clock::now();
    uint64_t beats = 0;
    while (!stopping_) {
      std::optional<WireMessage> message = recv_message(connection, kPollInterval);
      Clock::time_point now = Clock::now();
      if (message) last_heard = now;
      // Liveness runs on the alloc port only: the init port carries one-sided puts, no messages.
      if (kind == PortKind::kAlloc) {
        if (now - last_heard > params_.heartbeat_timeout) {
          log_warning("kv receiver: sender {} has been silent for {} ms (pd_heartbeat_timeout_sec): "
                      "taken for hung or dead; closing its connection",
                      connection.peer_name(), params_.heartbeat_timeout.count());
          break;
        }
        if (now - last_sent >= params_.heartbeat_interval) {
          send_message(connection, Heartbeat{++beats});
          last_sent = now;
        }
      }
      if (!message || std::holds_alternative<Heartbeat>(*message)) continue;
      if (kind == PortKind::kAlloc) {
        serve_alloc_message(connection, *message, writing);
      } else {
        log_warning("kv receiver: unexpected {} on the init port from {}; closing",
                    message_type_name(message_type(*message)), connection.peer_name());
        return;
      }
    }
  } catch (const TransportError& e) {
    log_info("kv receiver: connection from {} ended: {}", connection.peer_name(), e.what());
  } catch (const std::exception& e) {
    log_warning("kv receiver: closing the connection from {}: {}", connection.peer_name(),
                e.what());
  }
  // A sender that went away mid-transfer will not finish it: free its pages now.
  for (const std::string& id : writing) {
    if (registry_.release_if_writing(id)) {
      log_warning("kv receiver: transfer {} lost its sender before TransferDone; freed", id);
    }
  }
}

void ReceiverServer::serve_alloc_message(Connection& connection, const WireMessage& message,
                                         std::set<std::string>& writing) {
  if (const auto* request = std::get_if<AllocRequest>(&message)) {
    AllocResponse response = registry_.allocate(*request, ReceiverRegistry::Clock::now());
    if (response.status == AllocStatus::kError) {
      log_warning("kv receiver: refusing transfer {}: {}", request->request_id, response.message);
    }
    if (response.status == AllocStatus::kOk) writing.insert(request->request_id);
    send_message(connection, response);
  } else if (const auto* done = std::get_if<TransferDone>(&message)) {
    // Only a transfer this connection allocated: another sender's (or an unknown) id is ignored.
    if (!writing.erase(done->request_id)) {
      log_warning("kv receiver: TransferDone for {} from {}, which has no such transfer; ignored",
                  done->request_id, connection.peer_name());
      return;
    }
    registry_.complete(*done);
  } else if (const auto* abort = std::get_if<Abort>(&message)) {
    if (!writing.erase(abort->request_id)) {  // e.g. after a refused (full) allocation
      log_info("kv receiver: Abort for {} from {}, which holds no such transfer; ignored",
                  abort->request_id, connection.peer_name());
      return;
    }
    log_info("kv receiver: sender aborted transfer {}: {}", abort->request_id, abort->reason);
    registry_.release(abort->request_id);
  } else {
    fail("unexpected {} on the alloc port", message_type_name(message_type(message)));
  }
}

void ReceiverServer::reap_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    cv_.wait_for(lock, kReapInterval, [this] { return stopping_.load(); });
    lock.unlock();
    for (const std::string& id : registry_.reap(ReceiverRegistry::Clock::now())) {
      log_warning("kv receiver: transfer {} was not loaded within the timeout; freed its pages",
                  id);
    }
    lock.lock();
  }
}

}  // namespace tandem
