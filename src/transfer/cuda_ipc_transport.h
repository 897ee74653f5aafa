// The CUDA IPC transport: KV bytes move GPU to GPU on one node, control messages over an inner
// transport (UCX). A receiver's buffer is cudaMalloc'd on its GPU and announced by an
// IpcBufferKey (transfer/ipc_buffer_key.h) in the HelloAck; a sender on the same node opens it
// with cudaIpcOpenMemHandle (peer access over NVLink when it is another GPU) and puts with
// cudaMemcpyAsync on its own stream, straight from its GPU payload. A buffer announced with a UCX
// rkey (a receiver with pd_buffer_device cpu) is written through the inner transport instead,
// from host memory. Built only under TANDEM_CUDA.
#pragma once
#include <memory>

#include "transfer/transport.h"

namespace tandem {

// `control` carries the messages; `device` is this process's GPU (ordinal among the visible
// ones), where buffers are allocated and copies are issued. Throws tandem::Error without a GPU.
std::shared_ptr<Transport> make_cuda_ipc_transport(std::shared_ptr<Transport> control, int device);

}  // namespace tandem
