// sample_tokens: one block of 1024 threads per row. Pass 1 finds (max, lowest index) and notes NaN
// and +inf. A draw finds the top-k and top-p cuts by bisection over the values' order keys (each
// step one pass over the row and a block sum: ~32 passes a cut, no sort), settles ties at the top-p
// cut in id order, then draws: each thread sums the kept weights of its contiguous slice of ids,
// the block scans the slice sums, and the thread whose slice holds the target walks it. The last
// pass sums exp(x - max) for the log-softmax normalizer.
#include "kernels/cuda/sampling.cuh"

namespace tandem::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;

struct MaxIdx {
  float v;
  int32_t i;
};

__device__ __forceinline__ MaxIdx better(MaxIdx a, MaxIdx b) {
  if (b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
  return a;
}

// A monotone map of non-NaN floats to int32 (a < b iff key(a) < key(b)), -0 counted as +0: the
// host sampler's order_key.
__device__ __forceinline__ int32_t order_key(float x) {
  const int32_t bits = __float_as_int(x + 0.0f);
  return bits ^ ((bits >> 31) & 0x7FFFFFFF);
}

// The block's sum of v in a fixed order (every thread gets it). scratch: kWarps doubles.
__device__ double block_total(double v, double* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = 0.0;
  for (int w = 0; w < kWarps; ++w) total += scratch[w];
  return total;
}

// The exclusive prefix sum of v over the block (thread order); *total gets the block's sum.
__device__ double block_exclusive_scan(double v, double* scratch, double* total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  double inclusive = v;
  for (int o = 1; o < 32; o <<= 1) {
    const double other = __shfl_up_sync(0xffffffffu, inclusive, o);
    if (lane >= o) inclusive += other;
  }
  __syncthreads();
  if (lane == 31) scratch[warp] = inclusive;
  __syncthreads();
  double before = 0.0, sum = 0.0;
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) before += scratch[w];
    sum += scratch[w];
  }
  *total = sum;
  return before + inclusive - v;
}

// One row's draw: the values v = x / t, their keys and weights exp(v - top).
struct Row {
  const float* x;
  int64_t vocab;
  float t, top;
  __device__ float v(int64_t j) const { return x[j] / t; }
  __device__ double w(float v) const { return double(__expf(v - top)); }
};

// The largest key k with f(k) >= target, for f non-increasing: bisection over the int32 keys,
// each step one pass over the row (f sums per thread what `term(j, k)` gives, then the block).
template <typename Term>
__device__ int32_t largest_key_reaching(const Row& r, double target, int32_t hi_key,
                                        double* scratch, Term term) {
  int64_t lo = INT32_MIN, hi = int64_t(hi_key) + 1;  // f(lo) >= target > f(hi) (or lo stays)
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    double part = 0.0;
    for (int64_t j = threadIdx.x; j < r.vocab; j += kThreads) part += term(j, int32_t(mid));
    if (block_total(part, scratch) >= target) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return int32_t(lo);
}

__global__ void sample_kernel(const float* logits, int64_t vocab, const TokenDraw* draws,
                              int32_t* ids, float* logprobs, int32_t* invalid) {
  __shared__ MaxIdx best_s[32];
  __shared__ float sum_s[32];
  __shared__ double scratch[kWarps];
  __shared__ int32_t pick_s;
  const float* x = logits + int64_t(blockIdx.x) * vocab;
  MaxIdx best{-INFINITY, INT32_MAX};
  int bad = 0;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) {
    const float value = x[j];
    bad |= int(isnan(value) || value == INFINITY);
    best = better(best, {value, int32_t(j)});
  }
  bad = __syncthreads_or(bad);
  for (int o = 16; o > 0; o >>= 1) {
    MaxIdx other{__shfl_xor_sync(0xffffffffu, best.v, o), __shfl_xor_sync(0xffffffffu, best.i, o)};
    best = better(best, other);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) best_s[warp] = best;
  __syncthreads();
  best = best_s[0];
  for (int w = 1; w < kWarps; ++w) best = better(best, best_s[w]);
  bad |= int(best.v == -INFINITY);      // every value -inf (or NaN): nothing to pick
  if (best.i == INT32_MAX) best.i = 0;  // a row of NaNs: no maximum; pick token 0
  int32_t id = best.i;

  const TokenDraw d = draws ? draws[blockIdx.x] : TokenDraw{};
  if (d.temperature > 0.0f && !bad) {
    // x / t rounds monotonically, so max_j (x_j / t) is (max x) / t.
    const Row r{x, vocab, d.temperature, best.v / d.temperature};
    const int32_t top_key = order_key(r.top);
    // top-k: the k-th largest value's key (ids with a key at least that are the candidates)
    int32_t k_key = INT32_MIN;
    if (d.top_k > 0 && d.top_k < vocab) {
      k_key = largest_key_reaching(r, double(d.top_k), top_key, scratch, [&](int64_t j, int32_t k) {
        return order_key(r.v(j)) >= k ? 1.0 : 0.0;
      });
    }
    auto candidate = [&](float v) { return order_key(v) >= k_key; };
    // top-p: the cut value's key, the mass above it, and the last kept id among its ties
    int32_t p_key = INT32_MIN, p_last = int32_t(vocab);
    if (d.top_p < 1.0f) {
      double part = 0.0;
      for (int64_t j = threadIdx.x; j < vocab; j += kThreads) {
        const float v = r.v(j);
        if (candidate(v)) part += r.w(v);
      }
      const double target = double(d.top_p) * block_total(part, scratch);
      p_key = largest_key_reaching(r, target, top_key, scratch, [&](int64_t j, int32_t k) {
        const float v = r.v(j);
        return candidate(v) && order_key(v) >= k ? r.w(v) : 0.0;
      });
      part = 0.0;
      for (int64_t j = threadIdx.x; j < vocab; j += kThreads) {
        const float v = r.v(j);
        if (candidate(v) && order_key(v) > p_key) part += r.w(v);
      }
      const double above = block_total(part, scratch);
      // Ties at the cut, in id order: kept while the mass ranked above them is below the target.
      const int64_t slice = (vocab + kThreads - 1) / kThreads;
      const int64_t begin = min(vocab, int64_t(threadIdx.x) * slice),
                    end = min(vocab, begin + slice);
      double tie_mass = 0.0;
      for (int64_t j = begin; j < end; ++j) {
        const float v = r.v(j);
        if (candidate(v) && order_key(v) == p_key) tie_mass += r.w(v);
      }
      double ties_total = 0.0;
      const double before = above + block_exclusive_scan(tie_mass, scratch, &ties_total);
      if (threadIdx.x == 0) pick_s = INT32_MAX;
      __syncthreads();
      if (tie_mass > 0.0 && before < target) {
        double running = before;
        for (int64_t j = begin; j < end; ++j) {
          const float v = r.v(j);
          if (!candidate(v) || order_key(v) != p_key) continue;
          running += r.w(v);
          if (running >= target) {
            atomicMin(&pick_s, int32_t(j));
            break;
          }
        }
      }
      __syncthreads();
      if (pick_s != INT32_MAX) p_last = pick_s;  // else every tie stays
      __syncthreads();
    }
    auto kept = [&](int64_t j, float v) {
      if (!candidate(v)) return false;
      const int32_t key = order_key(v);
      if (key < p_key || (key == p_key && j > p_last)) return false;
      return d.min_p <= 0.0f || __expf(v - r.top) >= d.min_p;
    };
    // The draw over the kept weights in id order.
    const int64_t slice = (vocab + kThreads - 1) / kThreads;
    const int64_t begin = min(vocab, int64_t(threadIdx.x) * slice), end = min(vocab, begin + slice);
    double mass = 0.0;
    for (int64_t j = begin; j < end; ++j) {
      const float v = r.v(j);
      if (kept(j, v)) mass += r.w(v);
    }
    double total = 0.0;
    const double before = block_exclusive_scan(mass, scratch, &total);
    const double target = d.u * total;
    if (threadIdx.x == 0) pick_s = INT32_MAX;
    __syncthreads();
    // Rounding may let two neighbouring slices both claim the target: the lower id wins.
    if (mass > 0.0 && before <= target && target < before + mass) {
      double running = before;
      for (int64_t j = begin; j < end; ++j) {
        const float v = r.v(j);
        if (!kept(j, v)) continue;
        running += r.w(v);
        if (running > target) {
          atomicMin(&pick_s, int32_t(j));
          break;
        }
      }
    }
    __syncthreads();
    if (pick_s != INT32_MAX) id = pick_s;  // else rounding put the target past the total
  }
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) sum += expf(x[j] - best.v);
  sum = block_sum(sum, sum_s);
  if (threadIdx.x == 0) {
    ids[blockIdx.x] = id;
    if (logprobs) logprobs[blockIdx.x] = (x[id] - best.v) - logf(sum);
    if (invalid) invalid[blockIdx.x] = bad;
  }
}

}  // namespace

cudaError_t sample_tokens(const float* logits, int64_t rows, int64_t vocab, const TokenDraw* draws,
                          int32_t* ids, float* logprobs, int32_t* invalid, cudaStream_t stream) {
  static_assert(sizeof(TokenDraw) == 24, "TokenDraw crosses as 24 bytes");
  if (rows <= 0) return cudaSuccess;
  if (vocab <= 0 || rows > INT32_MAX || vocab > INT32_MAX || !logits || !ids) {
    return cudaErrorInvalidValue;
  }
  sample_kernel<<<unsigned(rows), kThreads, 0, stream>>>(logits, vocab, draws, ids, logprobs,
                                                         invalid);
  return last_launch_error();
}

}  // namespace tandem::cuda
