// The wire protocol: every message round-trips; every truncation, every single-byte corruption,
// every oversized or out-of-range field is rejected with a WireError; random garbage (with the
// checksum fixed up, so the payload decoders see it) never crashes the decoder.
#include "transfer/wire_protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace tandem {
namespace {

using ::testing::HasSubstr;

BlockHash make_hash(uint8_t seed) {
  BlockHash h;
  for (size_t i = 0; i < h.bytes.size(); ++i) h.bytes[i] = uint8_t(seed * 31 + i);
  return h;
}

std::vector<WireMessage> sample_messages() {
  AllocRequest request{"cmpl-42-0", {}, {}};
  for (size_t i = 0; i < request.layout_fingerprint.size(); ++i) {
    request.layout_fingerprint[i] = uint8_t(200 + i);
  }
  for (uint8_t i = 0; i < 3; ++i) request.chunks.push_back({make_hash(i), 256, 1u << 20});
  request.chunks.back().num_tokens = 17;
  return {
      Hello{kWireVersion, PeerRole::kSender, "prefiller@host:7100"},
      HelloAck{kWireVersion,
               HelloStatus::kOk,
               "decoder@host:7200",
               0x7f0012340000,
               1u << 30,
               4096,
               {1, 2, 3, 4, 5},
               ""},
      HelloAck{kWireVersion,
               HelloStatus::kVersionMismatch,
               "decoder",
               0,
               0,
               0,
               {},
               "this decoder speaks version 1"},
      HelloAck{kWireVersion, HelloStatus::kOk, "decoder-alloc-port", 0, 0, 0, {}, ""},
      request,
      AllocResponse{"cmpl-42-0",
                    AllocStatus::kOk,
                    {{ChunkPlacement::kWrite, 0},
                     {ChunkPlacement::kAlreadyPresent, 0},
                     {ChunkPlacement::kWrite, 1u << 20}},
                    ""},
      AllocResponse{"cmpl-43-0", AllocStatus::kFull, {}, "buffer full"},
      TransferDone{"cmpl-42-0", {make_hash(0), make_hash(1), make_hash(2)}},
      TransferDone{"cmpl-44-0", {}},
      Abort{"cmpl-42-0", "client disconnected"},
      Heartbeat{123456789},
  };
}

// Rewrites the header's CRC so that payload changes reach the payload decoders.
void fix_crc(std::vector<uint8_t>& frame) {
  uint32_t crc = crc32c(std::span(frame).subspan(kFrameHeaderBytes));
  for (int i = 0; i < 4; ++i) frame[12 + i] = uint8_t(crc >> (8 * i));
}

void set_u32(std::vector<uint8_t>& frame, size_t offset, uint32_t v) {
  for (int i = 0; i < 4; ++i) frame[offset + i] = uint8_t(v >> (8 * i));
}

std::string decode_error(std::span<const uint8_t> frame) {
  try {
    decode_message(frame);
  } catch (const WireError& e) {
    return e.what();
  }
  return "";
}

TEST(WireProtocol, EveryMessageRoundTrips) {
  for (const WireMessage& message : sample_messages()) {
    std::vector<uint8_t> frame = encode_message(message);
    EXPECT_EQ(complete_frame_size(frame), frame.size());
    EXPECT_EQ(decode_message(frame), message) << message_type_name(message_type(message));
  }
}

TEST(WireProtocol, HeaderLayoutIsLittleEndian) {
  std::vector<uint8_t> frame = encode_message(Heartbeat{0x0102030405060708});
  ASSERT_EQ(frame.size(), kFrameHeaderBytes + 8);
  EXPECT_EQ(std::string(frame.begin(), frame.begin() + 4), "TDKV");
  EXPECT_EQ(frame[4], kWireVersion);
  EXPECT_EQ(frame[5], 0);
  EXPECT_EQ(frame[6], uint8_t(MessageType::kHeartbeat));
  EXPECT_EQ(frame[8], 8);  // payload bytes
  EXPECT_EQ(frame[kFrameHeaderBytes], 0x08);
  EXPECT_EQ(frame.back(), 0x01);
}

TEST(WireProtocol, EveryTruncationIsRejected) {
  for (const WireMessage& message : sample_messages()) {
    std::vector<uint8_t> frame = encode_message(message);
    for (size_t n = 0; n < frame.size(); ++n) {
      std::span<const uint8_t> prefix(frame.data(), n);
      EXPECT_EQ(complete_frame_size(prefix), 0u);
      EXPECT_THAT(decode_error(prefix), HasSubstr("wire protocol"))
          << message_type_name(message_type(message)) << " cut to " << n << " bytes";
    }
  }
}

TEST(WireProtocol, TruncatedPayloadWithMatchingHeaderIsRejected) {
  // Shorten the payload and make the header agree (length and CRC): the field decoders must
  // notice the missing bytes themselves.
  for (const WireMessage& message : sample_messages()) {
    std::vector<uint8_t> frame = encode_message(message);
    for (size_t n = kFrameHeaderBytes; n < frame.size(); ++n) {
      std::vector<uint8_t> cut(frame.begin(), frame.begin() + n);
      set_u32(cut, 8, uint32_t(n - kFrameHeaderBytes));
      fix_crc(cut);
      EXPECT_THAT(decode_error(cut), HasSubstr("wire protocol"))
          << message_type_name(message_type(message)) << " payload cut to " << n << " bytes";
    }
  }
}

TEST(WireProtocol, EverySingleByteCorruptionIsRejected) {
  for (const WireMessage& message : sample_messages()) {
    std::vector<uint8_t> frame = encode_message(message);
    for (size_t i = 0; i < frame.size(); ++i) {
      for (uint8_t mask : {0x01, 0x80, 0xFF}) {
        std::vector<uint8_t> bad = frame;
        bad[i] ^= mask;
        EXPECT_NE(decode_error(bad), "")
            << message_type_name(message_type(message)) << " byte " << i << " ^ " << int(mask);
      }
    }
  }
}

TEST(WireProtocol, TrailingBytesAreRejected) {
  std::vector<uint8_t> frame = encode_message(Abort{"r", "x"});
  frame.push_back(0);
  EXPECT_THAT(decode_error(frame), HasSubstr("header announces"));
  set_u32(frame, 8, uint32_t(frame.size() - kFrameHeaderBytes));
  fix_crc(frame);
  EXPECT_THAT(decode_error(frame), HasSubstr("trailing"));
}

TEST(WireProtocol, HeaderChecksNameTheProblem) {
  std::vector<uint8_t> frame = encode_message(Heartbeat{1});
  std::vector<uint8_t> bad = frame;
  bad[0] = 'X';
  EXPECT_THAT(decode_error(bad), HasSubstr("not a Tandem KV-transfer frame"));
  bad = frame;
  bad[4] = 2;
  EXPECT_THAT(decode_error(bad), HasSubstr("unsupported protocol version 2"));
  bad = frame;
  bad[6] = 99;
  EXPECT_THAT(decode_error(bad), HasSubstr("unknown message type 99"));
  bad = frame;
  set_u32(bad, 8, kMaxPayloadBytes + 1);
  EXPECT_THAT(decode_error(bad), HasSubstr("exceeds the limit"));
  EXPECT_THROW(complete_frame_size(bad), WireError);  // rejected before the payload arrives
  bad = frame;
  bad[12] ^= 1;
  EXPECT_THAT(decode_error(bad), HasSubstr("checksum"));
}

// Applies `edit` to the payload of `message`'s frame (CRC fixed up) and returns the error.
template <typename Edit>
std::string edited_error(const WireMessage& message, Edit edit) {
  std::vector<uint8_t> frame = encode_message(message);
  edit(frame);
  set_u32(frame, 8, uint32_t(frame.size() - kFrameHeaderBytes));
  fix_crc(frame);
  return decode_error(frame);
}

TEST(WireProtocol, OutOfRangeFieldsAreRejected) {
  constexpr size_t P = kFrameHeaderBytes;
  // Hello: version 0, role 9, empty peer id.
  Hello hello{kWireVersion, PeerRole::kSender, "p"};
  EXPECT_THAT(edited_error(hello, [](auto& f) { f[P] = 0; }), HasSubstr("protocol_version"));
  EXPECT_THAT(edited_error(hello, [](auto& f) { f[P + 2] = 9; }), HasSubstr("unknown role 9"));
  EXPECT_THAT(edited_error(hello,
                           [](auto& f) {
                             f[P + 3] = 0;
                             f.pop_back();
                           }),
              HasSubstr("peer_id"));
  // AllocRequest: a chunk count larger than the bytes that follow, zero chunks, bad sizes.
  AllocRequest request{"r", {}, {{make_hash(1), 256, 4096}}};
  const size_t count_at = P + 2 + 1 + 16;
  EXPECT_THAT(edited_error(request, [&](auto& f) { set_u32(f, count_at, 1000); }),
              HasSubstr("needs at least"));
  EXPECT_THAT(edited_error(request, [&](auto& f) { set_u32(f, count_at, 0xFFFFFFFF); }),
              HasSubstr("exceeds the limit"));
  EXPECT_THAT(edited_error(request,
                           [&](auto& f) {
                             set_u32(f, count_at, 0);
                             f.resize(count_at + 4);
                           }),
              HasSubstr("at least one chunk"));
  EXPECT_THAT(edited_error(request, [&](auto& f) { set_u32(f, count_at + 4 + 16, 0); }),
              HasSubstr("num_tokens"));
  EXPECT_THAT(edited_error(request, [&](auto& f) { f[count_at + 4 + 20 + 7] = 0xFF; }),
              HasSubstr("num_bytes"));
  // AllocResponse: unknown status, slots with a non-ok status, unknown placement.
  AllocResponse response{"r", AllocStatus::kOk, {{ChunkPlacement::kWrite, 64}}, ""};
  const size_t status_at = P + 2 + 1;
  EXPECT_THAT(edited_error(response, [&](auto& f) { f[status_at] = 7; }),
              HasSubstr("unknown status 7"));
  EXPECT_THAT(edited_error(response, [&](auto& f) { f[status_at] = 1; }), HasSubstr("slots"));
  EXPECT_THAT(edited_error(response, [&](auto& f) { f[status_at + 5] = 4; }),
              HasSubstr("unknown placement 4"));
  EXPECT_THAT(edited_error(response, [&](auto& f) { f[status_at + 5] = 1; }),
              HasSubstr("out of range"));
  // HelloAck (ok): zero buffer size, a page size that is not a power of two, an address that
  // overflows, buffer fields without a key.
  HelloAck ack{kWireVersion, HelloStatus::kOk, "d", 4096, 8192, 4096, {1}, ""};
  const size_t size_at = P + 2 + 1 + 3 + 8;
  EXPECT_THAT(edited_error(ack, [&](auto& f) { std::memset(&f[size_at], 0, 8); }),
              HasSubstr("buffer_size"));
  EXPECT_THAT(edited_error(ack, [&](auto& f) { set_u32(f, size_at + 8, 3000); }),
              HasSubstr("power of two"));
  EXPECT_THAT(edited_error(ack, [&](auto& f) { std::memset(&f[size_at - 8], 0xFF, 8); }),
              HasSubstr("overflows"));
  HelloAck no_buffer{kWireVersion, HelloStatus::kOk, "d", 0, 0, 0, {}, ""};
  EXPECT_THAT(edited_error(no_buffer, [&](auto& f) { f[size_at] = 1; }),
              HasSubstr("buffer fields are set"));
}

TEST(WireProtocol, EncoderRefusesWhatTheDecoderWouldReject) {
  EXPECT_THROW(encode_message(Hello{kWireVersion, PeerRole::kSender, ""}), Error);
  EXPECT_THROW(encode_message(AllocRequest{"r", {}, {}}), Error);
  EXPECT_THROW(encode_message(AllocRequest{"r", {}, {{make_hash(0), 0, 1}}}), Error);
  EXPECT_THROW(encode_message(Abort{std::string(kMaxIdBytes + 1, 'x'), ""}), Error);
  EXPECT_THROW(encode_message(AllocResponse{"r", AllocStatus::kOk, {}, ""}), Error);
  std::vector<ChunkDesc> too_many(kMaxChunksPerRequest + 1, ChunkDesc{make_hash(0), 1, 1});
  EXPECT_THROW(encode_message(AllocRequest{"r", {}, too_many}), Error);
}

TEST(WireProtocol, LargestRequestFitsInOneFrame) {
  std::vector<ChunkDesc> chunks(kMaxChunksPerRequest, ChunkDesc{make_hash(3), 256, 1});
  AllocRequest request{std::string(kMaxIdBytes, 'r'), {}, chunks};
  EXPECT_EQ(decode_message(encode_message(request)), WireMessage(request));
}

TEST(WireProtocol, RandomCorruptionNeverCrashes) {
  std::mt19937 rng(1234);
  int decoded = 0, rejected = 0;
  for (const WireMessage& message : sample_messages()) {
    std::vector<uint8_t> frame = encode_message(message);
    for (int trial = 0; trial < 2000; ++trial) {
      std::vector<uint8_t> bad = frame;
      int flips = 1 + int(rng() % 8);
      for (int i = 0; i < flips; ++i) {
        // Leave the magic/version/type mostly intact so the payload decoders get exercised.
        size_t at = kFrameHeaderBytes + rng() % (bad.size() - kFrameHeaderBytes);
        bad[at] = uint8_t(rng());
      }
      if (trial % 4 == 0)
        bad.resize(kFrameHeaderBytes + rng() % (bad.size() - kFrameHeaderBytes + 1));
      set_u32(bad, 8, uint32_t(bad.size() - kFrameHeaderBytes));
      fix_crc(bad);
      try {
        WireMessage m = decode_message(bad);
        // Whatever decodes must re-encode to the same bytes: nothing was read out of place.
        EXPECT_EQ(encode_message(m), bad);
        ++decoded;
      } catch (const WireError&) {
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(decoded, 0);
}

TEST(WireProtocol, RandomBytesNeverCrash) {
  std::mt19937 rng(99);
  int decoded = 0, rejected = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    std::vector<uint8_t> bytes(rng() % 64);
    for (uint8_t& b : bytes) b = uint8_t(rng());
    if (bytes.size() >= kFrameHeaderBytes && trial % 2 == 0) {
      std::memcpy(bytes.data(), "TDKV\x01\x00", 6);  // a plausible header start
      bytes[6] = uint8_t(1 + rng() % 7);
      bytes[7] = 0;
      set_u32(bytes, 8, uint32_t(bytes.size() - kFrameHeaderBytes));
      fix_crc(bytes);
    }
    try {
      (void)complete_frame_size(bytes);
      (void)decode_message(bytes);
      ++decoded;
    } catch (const WireError&) {
      ++rejected;  // anything but a WireError (or a crash) fails the test
    }
  }
  EXPECT_GT(decoded, 0);
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace tandem
