// Tandem's KV-transfer wire protocol: the control messages between a prefiller (sender), a
// decoder (receiver) and the proxy; the KV bytes themselves travel as one-sided puts. A frame is
// a 16-byte little-endian header (magic "TDKV", version, type, payload length, CRC-32C of the
// payload) and the payload. Decoding checks every field and never trusts a length from the peer.
// docs/kv_transfer_protocol.md describes the exchange and every field.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "kv/block_hash.h"
#include "transfer/wire_codec.h"

namespace tandem {

inline constexpr uint32_t kWireMagic = 0x564B4454;  // bytes 'T' 'D' 'K' 'V'
inline constexpr uint16_t kWireVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 16;
inline constexpr uint32_t kMaxPayloadBytes = 8u << 20;
inline constexpr size_t kMaxChunksPerRequest = 1 << 16;
inline constexpr uint32_t kMaxChunkTokens = 1 << 20;
inline constexpr uint64_t kMaxChunkBytes = uint64_t(1) << 40;
inline constexpr uint64_t kMaxBufferBytes = uint64_t(1) << 50;
inline constexpr size_t kMaxIdBytes = 1024;    // request ids and peer ids
inline constexpr size_t kMaxTextBytes = 4096;  // error messages and abort reasons
inline constexpr size_t kMaxRkeyBytes = 64 << 10;

enum class MessageType : uint16_t {
  kHello = 1,
  kHelloAck = 2,
  kAllocRequest = 3,
  kAllocResponse = 4,
  kTransferDone = 5,
  kAbort = 6,
  kHeartbeat = 7,
};
const char* message_type_name(MessageType type);

enum class PeerRole : uint8_t { kSender = 1, kReceiver = 2, kProxy = 3 };

// Connecting side -> listening side, first message on a connection: who is calling.
struct Hello {
  uint16_t protocol_version = kWireVersion;  // the newest version the caller speaks (>= 1)
  PeerRole role = PeerRole::kSender;
  std::string peer_id;  // 1..kMaxIdBytes, e.g. "prefiller@host:7100"
  bool operator==(const Hello&) const = default;
};

enum class HelloStatus : uint8_t { kOk = 0, kVersionMismatch = 1, kRefused = 2 };

// Listening side -> connecting side. On the init port (kOk) it announces the buffer puts go to;
// on the alloc and proxy ports it announces none (empty rkey, zero buffer fields). With another
// status, `message` says why and the caller closes the connection.
struct HelloAck {
  uint16_t protocol_version = kWireVersion;
  HelloStatus status = HelloStatus::kOk;
  std::string peer_id;          // 1..kMaxIdBytes
  uint64_t buffer_address = 0;  // base of the registered buffer, as the transport addresses it
  uint64_t buffer_size = 0;     // bytes, 1..kMaxBufferBytes when a buffer is announced
  uint32_t page_size = 0;       // allocation granularity: a power of two when a buffer is announced
  std::vector<uint8_t> rkey;    // transport-specific remote key (UCX: a packed rkey), 0..64 KiB
  std::string message;          // 0..kMaxTextBytes
  bool operator==(const HelloAck&) const = default;
};

// One KV chunk a sender wants to write.
struct ChunkDesc {
  BlockHash hash;           // chunk_hashes() key
  uint32_t num_tokens = 0;  // 1..kMaxChunkTokens
  uint64_t num_bytes = 0;   // 1..kMaxChunkBytes, in the layout named by the fingerprint
  bool operator==(const ChunkDesc&) const = default;
};

using LayoutFingerprint = std::array<uint8_t, 16>;

// Sender -> receiver (alloc port): room for a request's chunks, please.
struct AllocRequest {
  std::string request_id;                  // 1..kMaxIdBytes
  LayoutFingerprint layout_fingerprint{};  // the KV layout of the bytes; must match the receiver's
  std::vector<ChunkDesc> chunks;  // 1..kMaxChunksPerRequest, total bytes <= kMaxBufferBytes
  bool operator==(const AllocRequest&) const = default;
};

enum class AllocStatus : uint8_t { kOk = 0, kFull = 1, kError = 2 };
enum class ChunkPlacement : uint8_t { kWrite = 0, kAlreadyPresent = 1 };

struct ChunkSlot {
  ChunkPlacement placement = ChunkPlacement::kWrite;
  uint64_t offset = 0;  // byte offset in the receiver buffer (kWrite); 0 for kAlreadyPresent
  bool operator==(const ChunkSlot&) const = default;
};

// Receiver -> sender: one slot per requested chunk (kOk), or none (kFull: retry; kError: give up).
struct AllocResponse {
  std::string request_id;
  AllocStatus status = AllocStatus::kOk;
  std::vector<ChunkSlot> slots;
  std::string message;  // 0..kMaxTextBytes
  bool operator==(const AllocResponse&) const = default;
};

// Sender -> receiver and -> proxy: every put of these chunks has completed.
struct TransferDone {
  std::string request_id;
  std::vector<BlockHash> chunks;  // 0..kMaxChunksPerRequest
  bool operator==(const TransferDone&) const = default;
};

// Either side: forget the request and free its buffer pages.
struct Abort {
  std::string request_id;
  std::string reason;  // 0..kMaxTextBytes
  bool operator==(const Abort&) const = default;
};

// Either side, when idle: still alive.
struct Heartbeat {
  uint64_t sequence = 0;
  bool operator==(const Heartbeat&) const = default;
};

using WireMessage =
    std::variant<Hello, HelloAck, AllocRequest, AllocResponse, TransferDone, Abort, Heartbeat>;

MessageType message_type(const WireMessage& message);

struct FrameHeader {
  MessageType type = MessageType::kHeartbeat;
  uint32_t payload_bytes = 0;  // <= kMaxPayloadBytes
  uint32_t payload_crc = 0;    // crc32c(payload)
};

// The whole frame (header + payload). Throws tandem::Error if a field breaks the limits above.
std::vector<uint8_t> encode_message(const WireMessage& message);

// Checks the first kFrameHeaderBytes of `bytes`: magic, version, known type, payload size.
FrameHeader decode_frame_header(std::span<const uint8_t> bytes);

// For a byte stream: the size of the first frame of `buffered` once all of it has arrived, else 0.
// Throws WireError as soon as the header is complete and invalid.
size_t complete_frame_size(std::span<const uint8_t> buffered);

// Decodes exactly one frame; throws WireError naming the message and field for any violation.
WireMessage decode_message(std::span<const uint8_t> frame);

}  // namespace tandem
