// UcxTransport and its Connection, Listener and RegisteredBuffer. Every UCP call is made under the
// worker's mutex; callers wait on the worker's condition variable while the progress thread
// drives the requests, so every wait has a deadline and ends early if the peer is lost.
#include "transfer/ucx_transport.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "transfer/ipc_buffer_key.h"
#include "transfer/ucx_worker.h"

namespace tandem {
namespace {

using Clock = std::chrono::steady_clock;

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

// host:port as a socket address, IPv4 preferred; an empty host (or "0.0.0.0") listens everywhere.
SockAddr resolve(const std::string& host, uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* results = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &results);
  if (rc != 0 || !results) {
    throw TransportError(fmt::format("cannot resolve host '{}': {}", host, gai_strerror(rc)));
  }
  const addrinfo* chosen = results;
  for (const addrinfo* ai = results; ai; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      chosen = ai;
      break;
    }
  }
  SockAddr out;
  std::memcpy(&out.storage, chosen->ai_addr, chosen->ai_addrlen);
  out.length = chosen->ai_addrlen;
  freeaddrinfo(results);
  return out;
}

uint16_t port_of(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
  }
  return 0;
}

// A frame being sent: UCX reads `bytes` until the send completes.
struct SendOp {
  UcxEndpoint* endpoint;
  std::vector<uint8_t> bytes;
};

void on_send_done(void* request, ucs_status_t status, void* user_data) {
  auto* op = static_cast<SendOp*>(user_data);
  UcxEndpoint& e = *op->endpoint;
  --e.outstanding;
  if (status != UCS_OK && e.worker) {
    e.worker->mark_broken(
        e, fmt::format("sending to {} failed: {}", e.peer_name, ucs_status_string(status)));
  }
  if (e.worker) e.worker->events.notify_all();
  delete op;
  ucp_request_free(request);
}

void on_put_done(void* request, ucs_status_t status, void* user_data) {
  UcxEndpoint& e = *static_cast<UcxEndpoint*>(user_data);
  --e.outstanding;
  if (status != UCS_OK && e.worker) {
    e.worker->mark_broken(
        e, fmt::format("put to {} failed: {}", e.peer_name, ucs_status_string(status)));
  }
  if (e.worker) e.worker->events.notify_all();
  ucp_request_free(request);
}

void on_flush_done(void* request, ucs_status_t status, void* user_data) {
  UcxEndpoint& e = *static_cast<UcxEndpoint*>(user_data);
  --e.outstanding;
  ++e.flushes_done;  // a later flush also covers every earlier one, so a count suffices
  if (status != UCS_OK && e.worker) {
    e.worker->mark_broken(
        e, fmt::format("flush to {} failed: {}", e.peer_name, ucs_status_string(status)));
  }
  // ucp_worker_progress may report no progress for a call that completed requests, so every
  // completion wakes the waiters itself (callbacks run under the worker mutex, in progress).
  if (e.worker) e.worker->events.notify_all();
  ucp_request_free(request);
}

ucp_request_param_t callback_param(ucp_send_nbx_callback_t callback, void* user_data) {
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  param.cb.send = callback;
  param.user_data = user_data;
  return param;
}

// Throws the endpoint's error: WireError for a protocol violation, else TransportError.
void throw_if_broken(const UcxEndpoint& e) {
  if (e.error.empty()) return;
  if (e.protocol_violation) throw WireError(e.error);
  throw TransportError(e.error);
}

// Issues a flush and waits (releasing `lock`) until it completes, the endpoint breaks, or the
// deadline passes; `what` names the operation in the timeout message.
void flush_endpoint(UcxWorker& w, UcxEndpoint& e, std::unique_lock<std::mutex>& lock,
                    Clock::time_point deadline, std::string_view what) {
  throw_if_broken(e);
  uint64_t target = ++e.flushes_started;
  ucp_request_param_t param = callback_param(on_flush_done, &e);
  ucs_status_ptr_t request = ucp_ep_flush_nbx(e.ep, &param);
  if (request == nullptr) {
    ++e.flushes_done;
  } else if (UCS_PTR_IS_ERR(request)) {
    w.mark_broken(e, fmt::format("flush to {} failed: {}", e.peer_name,
                                 ucs_status_string(UCS_PTR_STATUS(request))));
  } else {
    ++e.outstanding;
    w.wake();
  }
  bool done = w.events.wait_until(lock, deadline,
                                  [&] { return e.flushes_done >= target || !e.error.empty(); });
  throw_if_broken(e);
  if (!done) throw TransportError(fmt::format("{} {} timed out", what, e.peer_name));
}

class UcxConnection : public Connection {
 public:
  UcxConnection(std::shared_ptr<UcxWorker> worker, std::shared_ptr<UcxEndpoint> endpoint)
      : w_(std::move(worker)), e_(std::move(endpoint)) {}
  ~UcxConnection() override { close(); }

  void send(std::span<const uint8_t> frame) override {
    if (complete_frame_size(frame) != frame.size()) {
      throw WireError(
          fmt::format("send to {}: not exactly one frame ({} bytes)", e_->peer_name, frame.size()));
    }
    std::lock_guard lock(w_->mutex);
    throw_if_broken(*e_);
    auto* op = new SendOp{e_.get(), {frame.begin(), frame.end()}};
    ucp_request_param_t param = callback_param(on_send_done, op);
    ucs_status_ptr_t request =
        ucp_stream_send_nbx(e_->ep, op->bytes.data(), op->bytes.size(), &param);
    if (!UCS_PTR_IS_PTR(request)) {
      delete op;
      if (UCS_PTR_IS_ERR(request)) {
        w_->mark_broken(*e_, fmt::format("sending to {} failed: {}", e_->peer_name,
                                         ucs_status_string(UCS_PTR_STATUS(request))));
        throw_if_broken(*e_);
      }
      return;
    }
    ++e_->outstanding;
    w_->wake();
  }

  std::optional<std::vector<uint8_t>> recv(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(w_->mutex);
    w_->events.wait_for(lock, timeout, [&] { return !e_->frames.empty() || !e_->error.empty(); });
    if (!e_->frames.empty()) {
      std::vector<uint8_t> frame = std::move(e_->frames.front());
      e_->frames.pop_front();
      return frame;
    }
    throw_if_broken(*e_);
    return std::nullopt;
  }

  void attach_remote_buffer(const RemoteBufferInfo& info) override {
    std::lock_guard lock(w_->mutex);
    throw_if_broken(*e_);
    TANDEM_CHECK(!info.rkey.empty() && info.size > 0 && info.address <= UINT64_MAX - info.size,
                 "UCX: {} announced an invalid buffer ({} bytes at 0x{:x}, {}-byte rkey)",
                 e_->peer_name, info.size, info.address, info.rkey.size());
    if (is_ipc_buffer_key(info.rkey)) {
      throw TransportError(fmt::format(
          "{} announced a transfer buffer in GPU memory (pd_buffer_device: cuda), which only a "
          "--device cuda engine with pd_buffer_device: cuda writes into (by CUDA IPC)",
          e_->peer_name));
    }
    ucp_rkey_h rkey = nullptr;
    ucs_status_t status = ucp_ep_rkey_unpack(e_->ep, info.rkey.data(), &rkey);
    if (status != UCS_OK) {
      throw TransportError(fmt::format("UCX: the remote key from {} does not unpack: {}",
                                       e_->peer_name, ucs_status_string(status)));
    }
    if (e_->rkey) ucp_rkey_destroy(e_->rkey);
    e_->rkey = rkey;
    e_->remote_address = info.address;
    e_->remote_size = info.size;
  }

  void put(const void* local, size_t size, uint64_t remote_offset) override {
    if (size == 0) return;
    std::lock_guard lock(w_->mutex);
    throw_if_broken(*e_);
    TANDEM_CHECK(e_->rkey, "UCX: put to {} before its buffer was attached", e_->peer_name);
    TANDEM_CHECK(size <= e_->remote_size && remote_offset <= e_->remote_size - size,
                 "UCX: put of {} bytes at offset {} falls outside {}'s {}-byte buffer", size,
                 remote_offset, e_->peer_name, e_->remote_size);
    ucp_request_param_t param = callback_param(on_put_done, e_.get());
    ucs_status_ptr_t request =
        ucp_put_nbx(e_->ep, local, size, e_->remote_address + remote_offset, e_->rkey, &param);
    if (UCS_PTR_IS_ERR(request)) {
      w_->mark_broken(*e_, fmt::format("put to {} failed: {}", e_->peer_name,
                                       ucs_status_string(UCS_PTR_STATUS(request))));
      throw_if_broken(*e_);
    }
    if (UCS_PTR_IS_PTR(request)) {
      ++e_->outstanding;
      w_->wake();
    }
  }

  void flush(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(w_->mutex);
    flush_endpoint(*w_, *e_, lock, Clock::now() + timeout, "flush to");
  }

  bool is_broken() const override {
    std::lock_guard lock(w_->mutex);
    return !e_->error.empty();
  }

  std::string peer_name() const override { return e_->peer_name; }
  std::string peer_address() const override { return e_->peer_address; }

  void close() override {
    std::lock_guard lock(w_->mutex);
    w_->start_close(*e_, /* force = */ !e_->error.empty());
  }

 private:
  std::shared_ptr<UcxWorker> w_;
  std::shared_ptr<UcxEndpoint> e_;
};

void on_conn_request(ucp_conn_request_h request, void* arg) {
  static_cast<UcxListenerState*>(arg)->requests.push_back(request);
}

class UcxListener : public Listener {
 public:
  UcxListener(std::shared_ptr<UcxWorker> worker, std::shared_ptr<UcxListenerState> state)
      : w_(std::move(worker)), s_(std::move(state)) {}
  ~UcxListener() override {
    std::lock_guard lock(w_->mutex);
    w_->remove_listener(*s_);
  }

  uint16_t port() const override { return s_->port; }

  std::unique_ptr<Connection> accept(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(w_->mutex);
    if (!w_->events.wait_for(lock, timeout, [&] { return !s_->accepted.empty(); })) return nullptr;
    std::shared_ptr<UcxEndpoint> endpoint = std::move(s_->accepted.front());
    s_->accepted.pop_front();
    return std::make_unique<UcxConnection>(w_, std::move(endpoint));
  }

 private:
  std::shared_ptr<UcxWorker> w_;
  std::shared_ptr<UcxListenerState> s_;
};

class UcxBuffer : public RegisteredBuffer {
 public:
  UcxBuffer(std::shared_ptr<UcxWorker> worker, size_t bytes) : w_(std::move(worker)) {
    std::lock_guard lock(w_->mutex);
    ucp_mem_map_params_t params{};
    params.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH |
                        UCP_MEM_MAP_PARAM_FIELD_FLAGS;
    params.address = nullptr;
    params.length = bytes;
    params.flags = UCP_MEM_MAP_ALLOCATE;
    ucs_status_t status = ucp_mem_map(w_->context(), &params, &memh_);
    if (status != UCS_OK) {
      throw TransportError(fmt::format("UCX: cannot allocate and register a {}-byte buffer: {}",
                                       bytes, ucs_status_string(status)));
    }
    ucp_mem_attr_t attr{};
    attr.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH;
    void* rkey_buffer = nullptr;
    size_t rkey_size = 0;
    if (ucp_mem_query(memh_, &attr) != UCS_OK ||
        ucp_rkey_pack(w_->context(), memh_, &rkey_buffer, &rkey_size) != UCS_OK) {
      ucp_mem_unmap(w_->context(), memh_);
      throw TransportError(fmt::format("UCX: cannot describe a {}-byte buffer", bytes));
    }
    data_ = static_cast<uint8_t*>(attr.address);
    size_ = bytes;
    auto* packed = static_cast<const uint8_t*>(rkey_buffer);
    rkey_.assign(packed, packed + rkey_size);
    ucp_rkey_buffer_release(rkey_buffer);
  }
  ~UcxBuffer() override {
    std::lock_guard lock(w_->mutex);
    ucp_mem_unmap(w_->context(), memh_);
  }

  uint8_t* data() override { return data_; }
  size_t size() const override { return size_; }
  RemoteBufferInfo remote_info() const override {
    return {reinterpret_cast<uint64_t>(data_), size_, rkey_};
  }

 private:
  std::shared_ptr<UcxWorker> w_;
  ucp_mem_h memh_ = nullptr;
  uint8_t* data_ = nullptr;  // (size_) bytes, allocated by UCX
  size_t size_ = 0;
  std::vector<uint8_t> rkey_;  // packed remote key
};

class UcxTransport : public Transport {
 public:
  UcxTransport() : w_(std::make_shared<UcxWorker>()) {}

  std::unique_ptr<Listener> listen(const std::string& host, uint16_t port) override {
    SockAddr addr = resolve(host == "0.0.0.0" ? "" : host, port, /* passive = */ true);
    auto state = std::make_shared<UcxListenerState>();
    state->worker = w_.get();
    ucp_listener_params_t params{};
    params.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
    params.sockaddr.addr = reinterpret_cast<const sockaddr*>(&addr.storage);
    params.sockaddr.addrlen = addr.length;
    params.conn_handler.cb = on_conn_request;
    params.conn_handler.arg = state.get();
    std::lock_guard lock(w_->mutex);
    ucs_status_t status = ucp_listener_create(w_->worker(), &params, &state->listener);
    if (status != UCS_OK) {
      throw TransportError(
          fmt::format("UCX: cannot listen on {}:{}: {}", host, port, ucs_status_string(status)));
    }
    ucp_listener_attr_t attr{};
    attr.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR;
    state->port =
        ucp_listener_query(state->listener, &attr) == UCS_OK ? port_of(attr.sockaddr) : port;
    w_->add_listener(state);
    w_->wake();
    return std::make_unique<UcxListener>(w_, std::move(state));
  }

  std::unique_ptr<Connection> connect(const std::string& host, uint16_t port,
                                      std::chrono::milliseconds timeout) override {
    SockAddr addr = resolve(host, port, /* passive = */ false);
    std::string name = fmt::format("{}:{}", host, port);
    ucp_ep_params_t params{};
    params.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR;
    params.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
    params.sockaddr.addr = reinterpret_cast<const sockaddr*>(&addr.storage);
    params.sockaddr.addrlen = addr.length;
    std::unique_lock lock(w_->mutex);
    std::shared_ptr<UcxEndpoint> endpoint = w_->create_endpoint(params, name);
    try {
      // The flush completes once the connection is up, and fails if it cannot come up.
      flush_endpoint(*w_, *endpoint, lock, Clock::now() + timeout, "connecting to");
    } catch (const TransportError& e) {
      w_->start_close(*endpoint, /* force = */ true);
      throw TransportError(fmt::format("cannot connect to {}: {}", name, e.what()));
    }
    return std::make_unique<UcxConnection>(w_, std::move(endpoint));
  }

  std::unique_ptr<RegisteredBuffer> allocate_buffer(size_t bytes) override {
    TANDEM_CHECK(bytes > 0, "UCX: a registered buffer needs at least one byte");
    return std::make_unique<UcxBuffer>(w_, bytes);
  }

  std::string name() const override { return "ucx"; }

 private:
  std::shared_ptr<UcxWorker> w_;
};

}  // namespace

std::unique_ptr<Transport> make_ucx_transport() { return std::make_unique<UcxTransport>(); }

}  // namespace tandem
