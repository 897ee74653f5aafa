// Wire messages over any Connection.
#include "transfer/transport.h"

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

}  // namespace tandem
