// The KV connector settings the in-process transfer tests share: `chunk_size`-token chunks, the
// last prompt token left to the decoder, an 8 MB buffer, a 10 s transfer timeout, and peer ids
// that say which side is which in the logs.
#pragma once
#include <chrono>

#include "transfer/kv_connector_config.h"

namespace tandem::test {

inline KvConnectorConfig test_connector_config(PdRole role, int chunk_size) {
  KvConnectorConfig k;
  k.role = role;
  k.chunk_size = chunk_size;
  k.skip_last_n_tokens = 1;
  k.buffer_bytes = 8 << 20;
  k.transfer_timeout = std::chrono::seconds(10);
  k.peer_id = role == PdRole::kSender ? "test-prefiller" : "test-decoder";
  return k;
}

}  // namespace tandem::test
