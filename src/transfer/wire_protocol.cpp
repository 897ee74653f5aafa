// Encoding and checked decoding of the wire protocol's frames. encode_message decodes what it
// produced before returning it, so a message the peer would reject is never sent.
#include "transfer/wire_protocol.h"

#include <cstring>

namespace tandem {
namespace {

constexpr size_t kHashBytes = sizeof(BlockHash::bytes);
constexpr size_t kChunkDescBytes = kHashBytes + 4 + 8;
constexpr size_t kChunkSlotBytes = 1 + 8;

template <typename... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;  // clang 14 does not deduce aggregates (C++20) yet

std::span<const uint8_t> as_bytes(const BlockHash& h) { return h.bytes; }

void write_count(WireWriter& w, size_t n) {
  TANDEM_CHECK(n <= kMaxChunksPerRequest, "wire: {} chunks exceed the limit of {}", n,
               kMaxChunksPerRequest);
  w.u32(uint32_t(n));
}

BlockHash read_hash(WireReader& r, std::string_view field) {
  BlockHash h;
  std::span<const uint8_t> bytes = r.raw(kHashBytes, field);
  std::memcpy(h.bytes.data(), bytes.data(), kHashBytes);
  return h;
}

// ---- encoding -------------------------------------------------------------------------------

void write(WireWriter& w, const Hello& m) {
  w.u16(m.protocol_version);
  w.u8(uint8_t(m.role));
  w.str(m.peer_id);
}

void write(WireWriter& w, const HelloAck& m) {
  w.u16(m.protocol_version);
  w.u8(uint8_t(m.status));
  w.str(m.peer_id);
  w.u64(m.buffer_address);
  w.u64(m.buffer_size);
  w.u32(m.page_size);
  w.blob(m.rkey);
  w.str(m.message);
}

void write(WireWriter& w, const AllocRequest& m) {
  w.str(m.request_id);
  w.raw(m.layout_fingerprint);
  write_count(w, m.chunks.size());
  for (const ChunkDesc& c : m.chunks) {
    w.raw(as_bytes(c.hash));
    w.u32(c.num_tokens);
    w.u64(c.num_bytes);
  }
}

void write(WireWriter& w, const AllocResponse& m) {
  w.str(m.request_id);
  w.u8(uint8_t(m.status));
  write_count(w, m.slots.size());
  for (const ChunkSlot& s : m.slots) {
    w.u8(uint8_t(s.placement));
    w.u64(s.offset);
  }
  w.str(m.message);
}

void write(WireWriter& w, const TransferDone& m) {
  w.str(m.request_id);
  write_count(w, m.chunks.size());
  for (const BlockHash& h : m.chunks) w.raw(as_bytes(h));
}

void write(WireWriter& w, const Abort& m) {
  w.str(m.request_id);
  w.str(m.reason);
}

void write(WireWriter& w, const Heartbeat& m) { w.u64(m.sequence); }

// ---- decoding -------------------------------------------------------------------------------

uint16_t read_version(WireReader& r) {
  uint16_t v = r.u16("protocol_version");
  if (v == 0) r.fail_field("protocol_version", "must be at least 1, got 0");
  return v;
}

Hello read_hello(WireReader& r) {
  Hello m;
  m.protocol_version = read_version(r);
  uint8_t role = r.u8("role");
  if (role < 1 || role > 3) r.fail_field("role", fmt::format("unknown role {}", role));
  m.role = PeerRole(role);
  m.peer_id = r.str(1, kMaxIdBytes, "peer_id");
  return m;
}

// A HelloAck announces a buffer (init port) or none (alloc and proxy ports: all fields zero).
void check_buffer_fields(WireReader& r, const HelloAck& m) {
  if (m.rkey.empty()) {
    if (m.buffer_address != 0 || m.buffer_size != 0 || m.page_size != 0) {
      r.fail_field("rkey", "empty, but the buffer fields are set");
    }
    return;
  }
  if (m.buffer_size < 1 || m.buffer_size > kMaxBufferBytes) {
    r.fail_field("buffer_size", fmt::format("{} is outside 1..{}", m.buffer_size, kMaxBufferBytes));
  }
  if (m.buffer_address > UINT64_MAX - m.buffer_size) {
    r.fail_field("buffer_address", "address + size overflows");
  }
  if (m.page_size == 0 || (m.page_size & (m.page_size - 1)) != 0) {
    r.fail_field("page_size", fmt::format("{} is not a power of two", m.page_size));
  }
}

HelloAck read_hello_ack(WireReader& r) {
  HelloAck m;
  m.protocol_version = read_version(r);
  uint8_t status = r.u8("status");
  if (status > 2) r.fail_field("status", fmt::format("unknown status {}", status));
  m.status = HelloStatus(status);
  m.peer_id = r.str(1, kMaxIdBytes, "peer_id");
  m.buffer_address = r.u64("buffer_address");
  m.buffer_size = r.u64("buffer_size");
  m.page_size = r.u32("page_size");
  m.rkey = r.blob(kMaxRkeyBytes, "rkey");
  m.message = r.str(0, kMaxTextBytes, "message");
  if (m.status == HelloStatus::kOk) check_buffer_fields(r, m);
  return m;
}

ChunkDesc read_chunk_desc(WireReader& r, size_t index, uint64_t& total_bytes) {
  ChunkDesc c;
  c.hash = read_hash(r, "chunks.hash");
  c.num_tokens = r.u32("chunks.num_tokens");
  c.num_bytes = r.u64("chunks.num_bytes");
  if (c.num_tokens < 1 || c.num_tokens > kMaxChunkTokens) {
    r.fail_field("chunks.num_tokens", fmt::format("chunk {}: {} is outside 1..{}", index,
                                                  c.num_tokens, kMaxChunkTokens));
  }
  if (c.num_bytes < 1 || c.num_bytes > kMaxChunkBytes) {
    r.fail_field("chunks.num_bytes",
                 fmt::format("chunk {}: {} is outside 1..{}", index, c.num_bytes, kMaxChunkBytes));
  }
  total_bytes += c.num_bytes;  // at most 2^16 * 2^40: cannot overflow
  if (total_bytes > kMaxBufferBytes) {
    r.fail_field("chunks.num_bytes", fmt::format("total bytes exceed {}", kMaxBufferBytes));
  }
  return c;
}

AllocRequest read_alloc_request(WireReader& r) {
  AllocRequest m;
  m.request_id = r.str(1, kMaxIdBytes, "request_id");
  std::span<const uint8_t> fp = r.raw(m.layout_fingerprint.size(), "layout_fingerprint");
  std::memcpy(m.layout_fingerprint.data(), fp.data(), fp.size());
  size_t n = r.count(kMaxChunksPerRequest, kChunkDescBytes, "chunks");
  if (n == 0) r.fail_field("chunks", "a request must name at least one chunk");
  m.chunks.reserve(n);
  uint64_t total_bytes = 0;
  for (size_t i = 0; i < n; ++i) m.chunks.push_back(read_chunk_desc(r, i, total_bytes));
  return m;
}

ChunkSlot read_chunk_slot(WireReader& r, size_t index) {
  ChunkSlot s;
  uint8_t placement = r.u8("slots.placement");
  if (placement > 1) {
    r.fail_field("slots.placement", fmt::format("slot {}: unknown placement {}", index, placement));
  }
  s.placement = ChunkPlacement(placement);
  s.offset = r.u64("slots.offset");
  if (s.offset > kMaxBufferBytes ||
      (s.placement == ChunkPlacement::kAlreadyPresent && s.offset != 0)) {
    r.fail_field("slots.offset", fmt::format("slot {}: offset {} out of range", index, s.offset));
  }
  return s;
}

AllocResponse read_alloc_response(WireReader& r) {
  AllocResponse m;
  m.request_id = r.str(1, kMaxIdBytes, "request_id");
  uint8_t status = r.u8("status");
  if (status > 2) r.fail_field("status", fmt::format("unknown status {}", status));
  m.status = AllocStatus(status);
  size_t n = r.count(kMaxChunksPerRequest, kChunkSlotBytes, "slots");
  if ((m.status == AllocStatus::kOk) != (n > 0)) {
    r.fail_field("slots", fmt::format("{} slots with status {}", n, status));
  }
  m.slots.reserve(n);
  for (size_t i = 0; i < n; ++i) m.slots.push_back(read_chunk_slot(r, i));
  m.message = r.str(0, kMaxTextBytes, "message");
  return m;
}

TransferDone read_transfer_done(WireReader& r) {
  TransferDone m;
  m.request_id = r.str(1, kMaxIdBytes, "request_id");
  size_t n = r.count(kMaxChunksPerRequest, kHashBytes, "chunks");
  m.chunks.reserve(n);
  for (size_t i = 0; i < n; ++i) m.chunks.push_back(read_hash(r, "chunks"));
  return m;
}

Abort read_abort(WireReader& r) {
  Abort m;
  m.request_id = r.str(1, kMaxIdBytes, "request_id");
  m.reason = r.str(0, kMaxTextBytes, "reason");
  return m;
}

WireMessage read_payload(MessageType type, std::span<const uint8_t> payload) {
  WireReader r(payload, message_type_name(type));
  WireMessage message;
  switch (type) {
    case MessageType::kHello:
      message = read_hello(r);
      break;
    case MessageType::kHelloAck:
      message = read_hello_ack(r);
      break;
    case MessageType::kAllocRequest:
      message = read_alloc_request(r);
      break;
    case MessageType::kAllocResponse:
      message = read_alloc_response(r);
      break;
    case MessageType::kTransferDone:
      message = read_transfer_done(r);
      break;
    case MessageType::kAbort:
      message = read_abort(r);
      break;
    case MessageType::kHeartbeat:
      message = Heartbeat{r.u64("sequence")};
      break;
  }
  r.expect_end();
  return message;
}

}  // namespace

const char* message_type_name(MessageType type) {
  switch (type) {
    case MessageType::kHello:
      return "Hello";
    case MessageType::kHelloAck:
      return "HelloAck";
    case MessageType::kAllocRequest:
      return "AllocRequest";
    case MessageType::kAllocResponse:
      return "AllocResponse";
    case MessageType::kTransferDone:
      return "TransferDone";
    case MessageType::kAbort:
      return "Abort";
    case MessageType::kHeartbeat:
      return "Heartbeat";
  }
  return "?";
}

MessageType message_type(const WireMessage& message) {
  return std::visit(Overloaded{[](const Hello&) { return MessageType::kHello; },
                               [](const HelloAck&) { return MessageType::kHelloAck; },
                               [](const AllocRequest&) { return MessageType::kAllocRequest; },
                               [](const AllocResponse&) { return MessageType::kAllocResponse; },
                               [](const TransferDone&) { return MessageType::kTransferDone; },
                               [](const Abort&) { return MessageType::kAbort; },
                               [](const Heartbeat&) { return MessageType::kHeartbeat; }},
                    message);
}

std::vector<uint8_t> encode_message(const WireMessage& message) {
  MessageType type = message_type(message);
  WireWriter w;
  for (size_t i = 0; i < kFrameHeaderBytes; ++i) w.u8(0);  // header, filled below
  std::visit([&](const auto& m) { write(w, m); }, message);
  std::vector<uint8_t> frame = std::move(w.bytes());
  size_t payload_bytes = frame.size() - kFrameHeaderBytes;
  TANDEM_CHECK(payload_bytes <= kMaxPayloadBytes, "wire: a {} of {} bytes exceeds the limit {}",
               message_type_name(type), payload_bytes, kMaxPayloadBytes);
  WireWriter header;
  header.u32(kWireMagic);
  header.u16(kWireVersion);
  header.u16(uint16_t(type));
  header.u32(uint32_t(payload_bytes));
  header.u32(crc32c(std::span(frame).subspan(kFrameHeaderBytes)));
  std::memcpy(frame.data(), header.bytes().data(), kFrameHeaderBytes);
  try {
    (void)decode_message(frame);
  } catch (const WireError& e) {
    fail("wire: refusing to send an invalid {}: {}", message_type_name(type), e.what());
  }
  return frame;
}

FrameHeader decode_frame_header(std::span<const uint8_t> bytes) {
  WireReader r(bytes.first(std::min(bytes.size(), kFrameHeaderBytes)), "header");
  uint32_t magic = r.u32("magic");
  if (magic != kWireMagic) {
    r.fail_field("magic", fmt::format("0x{:08x} is not a Tandem KV-transfer frame", magic));
  }
  uint16_t version = r.u16("version");
  if (version != kWireVersion) {
    r.fail_field("version", fmt::format("unsupported protocol version {} (this build speaks {})",
                                        version, kWireVersion));
  }
  uint16_t type = r.u16("type");
  if (type < uint16_t(MessageType::kHello) || type > uint16_t(MessageType::kHeartbeat)) {
    r.fail_field("type", fmt::format("unknown message type {}", type));
  }
  FrameHeader h;
  h.type = MessageType(type);
  h.payload_bytes = r.u32("payload_bytes");
  if (h.payload_bytes > kMaxPayloadBytes) {
    r.fail_field("payload_bytes",
                 fmt::format("{} exceeds the limit of {}", h.payload_bytes, kMaxPayloadBytes));
  }
  h.payload_crc = r.u32("payload_crc");
  return h;
}

size_t complete_frame_size(std::span<const uint8_t> buffered) {
  if (buffered.size() < kFrameHeaderBytes) return 0;
  size_t size = kFrameHeaderBytes + decode_frame_header(buffered).payload_bytes;
  return buffered.size() >= size ? size : 0;
}

WireMessage decode_message(std::span<const uint8_t> frame) {
  FrameHeader h = decode_frame_header(frame);
  std::span<const uint8_t> payload = frame.subspan(kFrameHeaderBytes);
  if (payload.size() != h.payload_bytes) {
    throw WireError(
        fmt::format("wire protocol: {}: the header announces {} payload bytes, the "
                    "frame carries {}",
                    message_type_name(h.type), h.payload_bytes, payload.size()));
  }
  if (uint32_t crc = crc32c(payload); crc != h.payload_crc) {
    throw WireError(
        fmt::format("wire protocol: {}: payload checksum 0x{:08x} does not match "
                    "the header's 0x{:08x} (corrupted frame)",
                    message_type_name(h.type), crc, h.payload_crc));
  }
  return read_payload(h.type, payload);
}

}  // namespace tandem
