// Sampling on the GPU so only token ids (and their logprobs) cross to the host: greedy argmax with
// the chosen token's log-probability. CPU reference: the greedy path of engine/sampler.
#pragma once
#include "kernels/cuda/common.cuh"

namespace tandem::cuda {

// For each row r of logits (rows, vocab) f32: ids[r] = argmax (the lowest index among equal
// maxima) and logprobs[r] = log_softmax(row)[ids[r]]; invalid[r] = 1 when the row holds NaN or
// +inf or no value above -inf (the host sampler rejects such rows), else 0. logprobs and invalid
// may be null.
cudaError_t greedy_sample(const float* logits, int64_t rows, int64_t vocab, int32_t* ids,
                          float* logprobs, int32_t* invalid, cudaStream_t stream);

}  // namespace tandem::cuda
