// The `kv_transfer_params` field of /v1/completions and /v1/chat/completions bodies (vLLM's
// name; LMCache's DisaggSpec inside), parsed into KvTransferParams at the edge. The proxy sets it
// on the prefill request (req_id plus the decoder's host and ports) and on the decode request
// (req_id, and first_token_id where the prefiller's sampled token can be taken over). Wrong types
// are a 400 naming the field; keys Tandem does not use are ignored.
#pragma once
#include <optional>

#include "server/request_fields.h"
#include "transfer/kv_transfer_params.h"

namespace tandem {

// nullopt when the field is absent or null; throws ApiError 400 for a malformed value.
std::optional<KvTransferParams> parse_kv_transfer_params(const RequestFields& request);

}  // namespace tandem
