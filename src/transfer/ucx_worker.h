// UcxWorker: the UCP context and worker behind a UcxTransport, the thread that drives their
// progress, and the per-connection state (UcxEndpoint) that UCX callbacks update. UCX runs in
// serialized mode: every UCP call happens under `mutex`, and `events` is notified whenever
// something a caller may wait for happens (frames arrived, a flush finished, a peer was lost,
// a connection was accepted). Listeners, connections and buffers share ownership of the worker.
#pragma once
#include <ucp/api/ucp.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tandem {

class UcxWorker;

// One connection's state; every field is guarded by the worker's mutex.
struct UcxEndpoint {
  UcxWorker* worker = nullptr;
  ucp_ep_h ep = nullptr;  // null once closed
  std::string peer_name;
  std::string peer_address;  // an accepted peer's IP address ("" for a connection we made)
  std::vector<uint8_t> stream_bytes;        // received bytes not yet forming a whole frame
  std::deque<std::vector<uint8_t>> frames;  // complete frames, oldest first
  std::string error;                        // why the connection broke; empty while healthy
  ucp_rkey_h rkey = nullptr;                // the peer's buffer, once attached
  uint64_t remote_address = 0;
  uint64_t remote_size = 0;
  uint64_t flushes_started = 0;
  uint64_t flushes_done = 0;
  int64_t outstanding = 0;  // UCP requests (sends, puts, flushes) whose callback is still due
  bool protocol_violation = false;  // the peer sent bytes that are not a valid frame
  void* close_request = nullptr;    // ucp_ep_close_nbx request in progress
};

// A listener's state: connection requests arrive in its callback, endpoints are made after.
struct UcxListenerState {
  UcxWorker* worker = nullptr;
  ucp_listener_h listener = nullptr;
  uint16_t port = 0;
  std::deque<ucp_conn_request_h> requests;            // from the UCX callback
  std::deque<std::shared_ptr<UcxEndpoint>> accepted;  // waiting for accept()
};

class UcxWorker {
 public:
  // Creates the context (RMA + stream features) and worker and starts the progress thread.
  // Throws TransportError if UCX cannot start.
  UcxWorker();
  ~UcxWorker();
  UcxWorker(const UcxWorker&) = delete;
  UcxWorker& operator=(const UcxWorker&) = delete;

  std::mutex mutex;
  std::condition_variable events;

  ucp_context_h context() const { return context_; }
  ucp_worker_h worker() const { return worker_; }

  // --- with `mutex` held ---
  // Creates an endpoint from `params` (sockaddr or conn_request set by the caller); the error
  // handler and user data are filled in here. Throws TransportError.
  std::shared_ptr<UcxEndpoint> create_endpoint(ucp_ep_params_t params, std::string peer_name);
  // Starts closing: FLUSH mode delivers queued messages first, FORCE drops them.
  void start_close(UcxEndpoint& endpoint, bool force);
  void add_listener(std::shared_ptr<UcxListenerState> listener);
  void remove_listener(UcxListenerState& listener);
  // Marks the endpoint broken (first reason wins) and wakes waiters.
  void mark_broken(UcxEndpoint& endpoint, const std::string& reason);

  // Wakes the progress thread after queuing work; callable without the mutex.
  void wake();

 private:
  // The progress thread; the helpers below run with `mutex` held and return how much they did.
  void progress_loop();
  unsigned drain_streams();
  void read_stream(UcxEndpoint& endpoint);
  void split_frames(UcxEndpoint& endpoint);
  unsigned accept_requests();
  unsigned reap_closed();
  bool busy() const;  // requests in flight: keep progressing instead of sleeping

  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  int event_fd_ = -1;  // the worker's wakeup fd (UCP_FEATURE_WAKEUP)
  int wake_fd_ = -1;   // an eventfd: wake() makes the progress thread's poll return
  std::vector<std::shared_ptr<UcxEndpoint>> endpoints_;  // alive until closed and quiet
  std::vector<std::shared_ptr<UcxListenerState>> listeners_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tandem
