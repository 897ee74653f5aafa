// send_abort_transfer: how the engines learn that a request's client left the proxy. Closing the
// upstream connection stops a streamed answer, but not a whole (non-streamed) one, nor the KV
// transfer: a prefiller would still push it and a decoder would hold the pages until
// pd_transfer_timeout_sec. So the proxy also posts /tandem/abort_transfer {"req_id": ID} to the
// prefiller and the decoder of the request: fire and forget, bounded by a deadline.
#pragma once
#include <string>

#include "proxy/async_io.h"
#include "proxy/proxy_config.h"
#include "proxy/upstream_client.h"

namespace tandem {

// Spawns the call on `executor` and returns at once; a failure is only logged.
void send_abort_transfer(const net::any_io_executor& executor, const HttpEndpoint& engine,
                         std::string name, std::string transfer_id, HeaderList headers,
                         SteadyClock::time_point deadline);

}  // namespace tandem
