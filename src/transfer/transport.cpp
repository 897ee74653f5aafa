// Wire messages over any Connection.
#include "transfer/transport.h"

#include <thread>

namespace tandem {

void send_message(Connection& connection, const WireMessage& message) {
  connection.send(encode_message(message));
}

std::optional<WireMessage> recv_message(Connection& connection, std::chrono::milliseconds timeout) {
  std::optional<std::vector<uint8_t>> frame = connection.recv(timeout);
  if (!frame) return std::nullopt;
  try {
    return decode_message(*frame);
  } catch (const WireError&) {
    connection.close();
    throw;
  }
}

void refuse_peer(Connection& connection, const HelloAck& refusal,
                 std::chrono::milliseconds linger) {
  send_message(connection, refusal);
  auto deadline = std::chrono::steady_clock::now() + linger;
  while (!connection.is_broken() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace tandem
