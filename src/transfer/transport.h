// The transport layer of KV transfer (STYLE habit 7: connector, layout, transport): connections
// that carry framed control messages both ways (send/recv) and one-sided puts of KV bytes into
// the peer's registered buffer (put/flush). Knows frames, not their meaning: the connector above
// speaks wire_protocol.h through send_message/recv_message. UCX implements it (ucx_transport.h).
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "kv/kv_cache_io.h"
#include "transfer/wire_protocol.h"

namespace tandem {

// A peer that cannot be reached or went away, a refused connection, or a timeout.
class TransportError : public Error {
 public:
  using Error::Error;
};

// What a peer needs to put into a registered buffer; a HelloAck carries it.
struct RemoteBufferInfo {
  uint64_t address = 0;       // base address as the owning transport names it
  uint64_t size = 0;          // bytes
  std::vector<uint8_t> rkey;  // transport-specific remote key
};

// Memory registered with a transport, which peers may put into: host memory (UCX) or GPU memory
// (CUDA IPC).
class RegisteredBuffer {
 public:
  virtual ~RegisteredBuffer() = default;
  virtual uint8_t* data() = 0;  // (size()) bytes in memory()
  virtual MemoryKind memory() const { return MemoryKind::kHost; }
  virtual size_t size() const = 0;
  virtual RemoteBufferInfo remote_info() const = 0;
};

// One peer. Control messages are ordered and reliable; puts are unordered among themselves until
// flush(). All methods may be called from any thread; one thread per connection at a time for
// recv(). A broken connection throws TransportError from every call that needs the peer.
class Connection {
 public:
  virtual ~Connection() = default;

  // Queues one complete frame (encode_message output); returns without waiting for the peer.
  virtual void send(std::span<const uint8_t> frame) = 0;
  // The next complete frame, or nullopt when none arrives within `timeout`. Throws
  // TransportError once the peer has gone away and no frame is left, or WireError (and breaks
  // the connection) if the peer sends bytes that are not a valid frame header.
  virtual std::optional<std::vector<uint8_t>> recv(std::chrono::milliseconds timeout) = 0;

  // Makes the peer's buffer (from its HelloAck) the target of put().
  virtual void attach_remote_buffer(const RemoteBufferInfo& info) = 0;
  // Starts writing local[0, size) to the peer's buffer at remote_offset and returns; `local` must
  // stay valid and unchanged until flush() returns. Throws tandem::Error if the range falls outside
  // the peer's buffer or no buffer is attached.
  virtual void put(const void* local, size_t size, uint64_t remote_offset) = 0;
  // What `local` of put() may point to: kHost (host memory only) or kCuda (this process's GPU
  // memory, or host memory). Known once a buffer is attached.
  virtual MemoryKind put_source_memory() const { return MemoryKind::kHost; }
  // Waits until every put issued so far is complete at the peer; throws TransportError on a
  // failed put, a broken connection, or a timeout.
  virtual void flush(std::chrono::milliseconds timeout) = 0;

  [[nodiscard]] virtual bool is_broken() const = 0;
  virtual std::string peer_name() const = 0;  // "host:port" or "accepted on :port"
  // An accepted connection's peer IP address ("127.0.0.1", "::1"); "" when unknown.
  virtual std::string peer_address() const = 0;
  // Flushes queued messages (bounded wait) and disconnects; the peer sees the connection break.
  virtual void close() = 0;
};

class Listener {
 public:
  virtual ~Listener() = default;
  virtual uint16_t port() const = 0;  // the bound port (the one asked for, or the free one chosen)
  // The next incoming connection, or nullptr if none arrives within `timeout`.
  virtual std::unique_ptr<Connection> accept(std::chrono::milliseconds timeout) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Listens on host:port (port 0: any free port). Throws TransportError if the port is taken.
  virtual std::unique_ptr<Listener> listen(const std::string& host, uint16_t port) = 0;
  // Connects to a listener; throws TransportError if it cannot within `timeout`.
  virtual std::unique_ptr<Connection> connect(const std::string& host, uint16_t port,
                                              std::chrono::milliseconds timeout) = 0;
  // Allocates `bytes` of host memory registered for peers' puts.
  virtual std::unique_ptr<RegisteredBuffer> allocate_buffer(size_t bytes) = 0;
  virtual std::string name() const = 0;  // e.g. "ucx"
};

// encode_message + send.
void send_message(Connection& connection, const WireMessage& message);
// recv + decode_message; a frame that does not decode breaks the connection and throws WireError.
std::optional<WireMessage> recv_message(Connection& connection, std::chrono::milliseconds timeout);

// Sends a refusing HelloAck, then waits (at most `linger`, reading nothing) for the peer to hang
// up before the caller closes: closing at once can drop the HelloAck on its way, and the peer
// would see a reset instead of the reason.
void refuse_peer(Connection& connection, const HelloAck& refusal,
                 std::chrono::milliseconds linger = std::chrono::seconds(1));

}  // namespace tandem
