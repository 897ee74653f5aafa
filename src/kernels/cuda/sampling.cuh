// Sampling on the GPU so only token ids (and their logprobs) cross to the host: the argmax, or a
// draw from softmax(logits / temperature) cut by top-k, top-p and min-p, with a uniform number the
// host supplies (the host keeps each sequence's RNG). CPU reference: engine/sampler (the same
// stages and kept sets; its draw walks the kept ids in its own order, this one in id order).
#pragma once
#include "kernels/cuda/common.cuh"

namespace tandem::cuda {

// One row's draw (24 bytes). temperature 0: the argmax; top_k <= 0: off; top_p 1: off; min_p 0:
// off.
struct TokenDraw {
  double u = 0.0;  // in [0, 1)
  float temperature = 0.0f;
  float top_p = 1.0f;
  float min_p = 0.0f;
  int32_t top_k = 0;
};

// For each row r of logits (rows, vocab) f32, with v = x / temperature and w = exp(v - max v):
// - draws null or draws[r].temperature == 0: ids[r] = argmax (the lowest index among equal maxima);
// - else the candidates are every id, or with top_k the ids whose v is at least the k-th largest
//   (ties kept); top_p keeps the fewest candidates by (v desc, id asc) whose w sum reaches top_p
//   times the candidates' (a token stays iff the mass ranked above it is below that); min_p keeps
//   w >= min_p; ids[r] = the first kept id at which the running w sum, in id order, exceeds u times
//   the kept total (sums in f64), or the argmax when rounding leaves no such id;
// - logprobs[r] = log_softmax(row)[ids[r]] under the raw logits;
// - invalid[r] = 1 when the row holds NaN or +inf or no value above -inf (the host sampler
//   rejects such rows), else 0.
// logprobs and invalid may be null.
cudaError_t sample_tokens(const float* logits, int64_t rows, int64_t vocab, const TokenDraw* draws,
                          int32_t* ids, float* logprobs, int32_t* invalid, cudaStream_t stream);

}  // namespace tandem::cuda
