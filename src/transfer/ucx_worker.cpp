// UcxWorker: context/worker setup, the progress thread (progress, stream draining into frames,
// accepting connection requests, reaping closed endpoints) and its idle wait on the worker's
// wakeup fd plus our own eventfd.
#include "transfer/ucx_worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>

#include "core/logging.h"
#include "transfer/transport.h"

namespace tandem {
namespace {

constexpr int kIdleWaitMs = 50;  // longest sleep without events; stop_ is checked this often
constexpr size_t kPollBatch = 16;

void on_ep_error(void* arg, ucp_ep_h /*ep*/, ucs_status_t status) {
  auto* endpoint = static_cast<UcxEndpoint*>(arg);
  if (!endpoint->worker) return;  // already reaped
  endpoint->worker->mark_broken(
      *endpoint,
      fmt::format("connection to {} lost: {}", endpoint->peer_name, ucs_status_string(status)));
}

// Shared-memory transports join endpoints that handle peer failure only with MM_ERROR_HANDLING;
// without it, processes on one host talk over loopback TCP (about 10x slower). Enabled unless
// the user set UCX_MM_ERROR_HANDLING, or a UCX_TLS without shared memory (UCX warns then).
bool shared_memory_allowed() {
  if (std::getenv("UCX_MM_ERROR_HANDLING")) return false;
  const char* tls = std::getenv("UCX_TLS");
  if (!tls) return true;
  std::string_view list(tls);
  for (std::string_view name : {"sm", "mm", "posix", "sysv", "all"}) {
    if (list.find(name) != std::string_view::npos) return true;
  }
  return false;
}

// A restarted decoder must listen on its ports again at once, not after TCP's TIME_WAIT. The
// connection manager reads this from the environment only (ucp_config_modify does not reach
// it), so it is set there, once, before the first worker starts — unless the user chose.
void allow_listener_port_reuse() {
  static std::once_flag once;
  std::call_once(once, [] { setenv("UCX_TCP_CM_REUSEADDR", "y", /* overwrite = */ 0); });
}

[[noreturn]] void ucx_fail(std::string_view what, ucs_status_t status) {
  throw TransportError(fmt::format("UCX: {}: {}", what, ucs_status_string(status)));
}

}  // namespace

UcxWorker::UcxWorker() {
  allow_listener_port_reuse();
  ucp_config_t* config = nullptr;
  ucs_status_t status = ucp_config_read(nullptr, nullptr, &config);
  if (status != UCS_OK) ucx_fail("cannot read the UCX configuration", status);
  if (shared_memory_allowed()) {
    status = ucp_config_modify(config, "MM_ERROR_HANDLING", "y");
    if (status != UCS_OK) {
      log_warning("UCX: cannot enable MM_ERROR_HANDLING: {}", ucs_status_string(status));
    }
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_RMA | UCP_FEATURE_STREAM | UCP_FEATURE_WAKEUP;
  status = ucp_init(&params, config, &context_);
  ucp_config_release(config);
  if (status != UCS_OK) ucx_fail("cannot initialise", status);
  ucp_worker_params_t worker_params{};
  worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  worker_params.thread_mode = UCS_THREAD_MODE_SERIALIZED;
  status = ucp_worker_create(context_, &worker_params, &worker_);
  if (status == UCS_OK) status = ucp_worker_get_efd(worker_, &event_fd_);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (status != UCS_OK || wake_fd_ < 0) {
    if (worker_) ucp_worker_destroy(worker_);
    ucp_cleanup(context_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    ucx_fail("cannot create a worker", status != UCS_OK ? status : UCS_ERR_IO_ERROR);
  }
  thread_ = std::thread(&UcxWorker::progress_loop, this);
}

UcxWorker::~UcxWorker() {
  stop_ = true;
  wake();
  thread_.join();
  std::lock_guard lock(mutex);
  for (auto& listener : std::vector(listeners_)) remove_listener(*listener);
  for (auto& endpoint : endpoints_) {
    if (endpoint->ep) start_close(*endpoint, /* force = */ true);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!endpoints_.empty() && std::chrono::steady_clock::now() < deadline) {
    ucp_worker_progress(worker_);
    reap_closed();
  }
  if (!endpoints_.empty())
    log_warning("UCX: {} endpoints did not close in time", endpoints_.size());
  ucp_worker_destroy(worker_);
  ucp_cleanup(context_);
  ::close(wake_fd_);
}

std::shared_ptr<UcxEndpoint> UcxWorker::create_endpoint(ucp_ep_params_t params,
                                                        std::string peer_name) {
  auto endpoint = std::make_shared<UcxEndpoint>();
  endpoint->worker = this;
  endpoint->peer_name = std::move(peer_name);
  params.field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER |
                       UCP_EP_PARAM_FIELD_USER_DATA;
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler.cb = on_ep_error;
  params.err_handler.arg = endpoint.get();
  params.user_data = endpoint.get();
  ucs_status_t status = ucp_ep_create(worker_, &params, &endpoint->ep);
  if (status != UCS_OK) {
    throw TransportError(fmt::format("UCX: cannot create an endpoint to {}: {}",
                                     endpoint->peer_name, ucs_status_string(status)));
  }
  endpoints_.push_back(endpoint);
  return endpoint;
}

void UcxWorker::start_close(UcxEndpoint& endpoint, bool force) {
  if (!endpoint.ep) return;
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  param.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0;
  void* request = ucp_ep_close_nbx(endpoint.ep, &param);
  endpoint.ep = nullptr;
  if (UCS_PTR_IS_PTR(request)) endpoint.close_request = request;
  mark_broken(endpoint, fmt::format("connection to {} closed", endpoint.peer_name));
  wake();
}

void UcxWorker::add_listener(std::shared_ptr<UcxListenerState> listener) {
  listeners_.push_back(std::move(listener));
}

void UcxWorker::remove_listener(UcxListenerState& listener) {
  for (ucp_conn_request_h request : listener.requests)
    ucp_listener_reject(listener.listener, request);
  listener.requests.clear();
  for (auto& endpoint : listener.accepted) start_close(*endpoint, /* force = */ true);
  listener.accepted.clear();
  ucp_listener_destroy(listener.listener);
  std::erase_if(listeners_, [&](const auto& l) { return l.get() == &listener; });
}

void UcxWorker::mark_broken(UcxEndpoint& endpoint, const std::string& reason) {
  if (endpoint.error.empty()) endpoint.error = reason;
  events.notify_all();
}

void UcxWorker::wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

unsigned UcxWorker::drain_streams() {
  ucp_stream_poll_ep_t polled[kPollBatch];
  ssize_t count = ucp_stream_worker_poll(worker_, polled, kPollBatch, 0);
  for (ssize_t i = 0; i < count; ++i) {
    auto* endpoint = static_cast<UcxEndpoint*>(polled[i].user_data);
    if (endpoint && endpoint->ep) read_stream(*endpoint);
  }
  return count > 0 ? unsigned(count) : 0;
}

void UcxWorker::read_stream(UcxEndpoint& endpoint) {
  for (;;) {
    size_t length = 0;
    ucs_status_ptr_t data = ucp_stream_recv_data_nb(endpoint.ep, &length);
    if (data == nullptr) break;
    if (UCS_PTR_IS_ERR(data)) {
      mark_broken(endpoint, fmt::format("receiving from {} failed: {}", endpoint.peer_name,
                                        ucs_status_string(UCS_PTR_STATUS(data))));
      return;
    }
    auto* bytes = static_cast<const uint8_t*>(data);
    endpoint.stream_bytes.insert(endpoint.stream_bytes.end(), bytes, bytes + length);
    ucp_stream_data_release(endpoint.ep, data);
  }
  split_frames(endpoint);
}

void UcxWorker::split_frames(UcxEndpoint& endpoint) {
  std::span<const uint8_t> bytes = endpoint.stream_bytes;
  size_t consumed = 0;
  try {
    while (size_t size = complete_frame_size(bytes.subspan(consumed))) {
      endpoint.frames.emplace_back(bytes.begin() + consumed, bytes.begin() + consumed + size);
      consumed += size;
    }
  } catch (const WireError& e) {
    endpoint.protocol_violation = true;
    mark_broken(endpoint, fmt::format("protocol error from {}: {}", endpoint.peer_name, e.what()));
    endpoint.stream_bytes.clear();
    start_close(endpoint, /* force = */ true);
    return;
  }
  endpoint.stream_bytes.erase(endpoint.stream_bytes.begin(),
                              endpoint.stream_bytes.begin() + consumed);
  if (consumed > 0) events.notify_all();
}

namespace {

struct ClientName {
  std::string name;     // "host:port (via :listen_port)"
  std::string address;  // "host", "" if unknown
};

// Who is calling on an incoming connection.
ClientName client_name(ucp_conn_request_h request, uint16_t port) {
  ucp_conn_request_attr_t attr{};
  attr.field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR;
  if (ucp_conn_request_query(request, &attr) != UCS_OK) {
    return {fmt::format("a peer of :{}", port), ""};
  }
  char host[INET6_ADDRSTRLEN] = "?";
  const auto* sa = reinterpret_cast<const sockaddr*>(&attr.client_address);
  uint16_t peer_port = 0;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    peer_port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    peer_port = ntohs(in6->sin6_port);
  }
  if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
    return {fmt::format("a peer of :{}", port), ""};
  }
  return {fmt::format("{}:{} (via :{})", host, peer_port, port), host};
}

}  // namespace

unsigned UcxWorker::accept_requests() {
  unsigned accepted = 0;
  for (auto& listener : listeners_) {
    while (!listener->requests.empty()) {
      ucp_conn_request_h request = listener->requests.front();
      listener->requests.pop_front();
      ucp_ep_params_t params{};
      params.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST;
      params.conn_request = request;
      try {
        ClientName client = client_name(request, listener->port);
        listener->accepted.push_back(create_endpoint(params, std::move(client.name)));
        listener->accepted.back()->peer_address = std::move(client.address);
        ++accepted;
      } catch (const TransportError& e) {
        log_warning("{}", e.what());
      }
    }
  }
  if (accepted > 0) events.notify_all();
  return accepted;
}

unsigned UcxWorker::reap_closed() {
  unsigned reaped = 0;
  for (auto& endpoint : endpoints_) {
    if (endpoint->ep) continue;
    if (endpoint->close_request) {
      if (ucp_request_check_status(endpoint->close_request) == UCS_INPROGRESS) continue;
      ucp_request_free(endpoint->close_request);
      endpoint->close_request = nullptr;
    }
    if (endpoint->outstanding > 0) continue;
    if (endpoint->rkey) {
      ucp_rkey_destroy(endpoint->rkey);
      endpoint->rkey = nullptr;
    }
    endpoint->worker = nullptr;  // marks it for removal below
    ++reaped;
  }
  std::erase_if(endpoints_, [](const auto& e) { return e->worker == nullptr; });
  return reaped;
}

bool UcxWorker::busy() const {
  return std::ranges::any_of(
      endpoints_, [](const auto& e) { return e->outstanding > 0 || (!e->ep && e->close_request); });
}

void UcxWorker::progress_loop() {
  while (!stop_) {
    bool idle = false;
    {
      std::lock_guard lock(mutex);
      unsigned n = ucp_worker_progress(worker_);
      n += drain_streams() + accept_requests() + reap_closed();
      if (n > 0) events.notify_all();
      idle = n == 0 && !busy() && ucp_worker_arm(worker_) == UCS_OK;
    }
    if (idle) {
      pollfd fds[2] = {{event_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      ::poll(fds, 2, kIdleWaitMs);
      uint64_t drained = 0;
      [[maybe_unused]] ssize_t r = ::read(wake_fd_, &drained, sizeof drained);
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace tandem
