// KvTransferParams: a request's `kv_transfer_params`, parsed at the HTTP edge into a native
// struct (STYLE habit 8). LMCache's DisaggSpec names the transfer (req_id, chosen by the proxy)
// and, on the prefiller, the decoder to push the prompt's KV to; on the decoder only req_id is
// set, so the pages transferred under it are freed once the request is admitted.
// first_token_id (Tandem's, on the decoder): the token the prefiller sampled after the prompt. The
// decoder streams it as the request's first output at once, without a forward pass, and continues
// from it, so the client's first token does not wait for a decoder step.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tandem {

struct DisaggSpec {
  std::string req_id;                        // 1..1024 bytes: the transfer's id
  std::optional<std::string> receiver_host;  // unset: the LMCache config's pd_peer_host
  std::vector<int> receiver_init_port;       // one per rank (rank 0 is used); empty: config's
  std::vector<int> receiver_alloc_port;      // same
  bool operator==(const DisaggSpec&) const = default;
};

struct KvTransferParams {
  std::optional<DisaggSpec> disagg_spec;
  std::optional<int32_t> first_token_id;  // in [0, vocab): the prefiller's sampled token
  bool operator==(const KvTransferParams&) const = default;
};

}  // namespace tandem
