// The UCX transport: a UCP worker with a listener per listen() (client-server connections over
// sockaddr), the stream API for framed control messages, ucp_put_nbx for one-sided KV writes into
// buffers registered with ucp_mem_map (their packed rkey travels in the HelloAck), and the
// endpoint error handler for peer failure. UCX picks the transports (UCX_TLS): shared memory or
// TCP for host buffers between processes of one machine, TCP (or RDMA) across machines.
#pragma once
#include <memory>

#include "transfer/transport.h"

namespace tandem {

// Starts UCX (reading the UCX_* environment) and its progress thread; throws TransportError.
std::unique_ptr<Transport> make_ucx_transport();

}  // namespace tandem
