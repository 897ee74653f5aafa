// sample_tokens: one block of 1024 threads per row. Pass 1 finds (max, lowest index) and notes NaN
// and +inf. A draw finds the top-k and top-p cuts by a radix select over the values' order keys
// (four passes of 8 bits, histograms of counts or of 32.32 fixed-point weights: no sort, and exact
// integer sums), settles ties at the top-p cut in id order, then draws: each thread sums the kept
// weights of its contiguous slice of ids, the block scans the slice sums, and the thread whose
// slice holds the target walks it. The last pass sums exp(x - max) for the log-softmax normalizer.
#include "kernels/cuda/launch.cuh"
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

// The exclusive prefix sum of v over the block (thread order); *total gets the block's sum. T is
// double (probability masses) or unsigned long long (fixed-point masses, exact in any order).
template <typename T>
__device__ T block_exclusive_scan(T v, T* scratch, T* total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  T inclusive = v;
  for (int o = 1; o < 32; o <<= 1) {
    const T other = __shfl_up_sync(0xffffffffu, inclusive, o);
    if (lane >= o) inclusive += other;
  }
  __syncthreads();
  if (lane == 31) scratch[warp] = inclusive;
  __syncthreads();
  T before = 0, sum = 0;
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

// Shared memory of a radix select: kHistCopies histograms (two warps share one, so lanes adding
// to one bin contend less), their sum, and the chosen bin.
constexpr int kHistCopies = kWarps / 2;
struct RadixScratch {
  unsigned long long hist[kHistCopies][256];
  unsigned long long bins[256];
  unsigned long long above;
  int bin;
};

// The largest unsigned key K with sum over ids whose key is >= K of mass >= target, and that sum
// less the ids at K (*above: the mass ranked above K); false when the whole mass is below target.
// `mass(j, key)` gives id j's integer mass (0: not counted) and sets its key. Four passes of
// 8 bits each; integer sums, so the result does not depend on the order of the adds.
template <typename Mass>
__device__ bool radix_select(int64_t vocab, unsigned long long target, RadixScratch& sm, Mass mass,
                             uint32_t* key, unsigned long long* above) {
  uint32_t prefix = 0, fixed = 0;  // the key bits chosen so far, and which
  unsigned long long mass_above = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < kHistCopies * 256; i += kThreads) (&sm.hist[0][0])[i] = 0;
    __syncthreads();
    unsigned long long* hist = sm.hist[(threadIdx.x / 32) % kHistCopies];
    for (int64_t j = threadIdx.x; j < vocab; j += kThreads) {
      uint32_t k;
      const unsigned long long m = mass(j, k);
      if (m && (k & fixed) == prefix) atomicAdd(&hist[(k >> shift) & 255u], m);
    }
    __syncthreads();
    if (threadIdx.x < 256) {
      unsigned long long total = 0;
      for (int c = 0; c < kHistCopies; ++c) total += sm.hist[c][threadIdx.x];
      sm.bins[threadIdx.x] = total;
    }
    __syncthreads();
    if (threadIdx.x == 0) {  // from the highest bin down, the first that reaches the target
      unsigned long long cum = mass_above;
      int bin = 255;
      for (; bin >= 0 && cum + sm.bins[bin] < target; --bin) cum += sm.bins[bin];
      sm.bin = bin;
      sm.above = cum;
    }
    __syncthreads();
    if (sm.bin < 0) return false;
    prefix |= uint32_t(sm.bin) << shift;
    fixed |= 0xFFu << shift;
    mass_above = sm.above;
  }
  *key = prefix;
  *above = mass_above;
  return true;
}

// The unsigned form of order_key: monotone over uint32.
__device__ __forceinline__ uint32_t unsigned_key(float v) {
  return uint32_t(order_key(v)) ^ 0x80000000u;
}

// A weight in [0, 1] as a 32.32 fixed-point integer (the cuts' exact sums).
__device__ __forceinline__ unsigned long long fixed_mass(double w) {
  return (unsigned long long)(w * 4294967296.0);
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* logits, int64_t vocab, const TokenDraw* draws, int32_t* ids,
                  float* logprobs, int32_t* invalid) {
  wait_for_previous_kernel();
  __shared__ MaxIdx best_s[32];
  __shared__ float sum_s[32];
  __shared__ double scratch[kWarps];
  __shared__ unsigned long long scan_u64[kWarps];
  __shared__ RadixScratch radix;
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
    // top-k: the k-th largest value's key; candidates are the ids whose key is at least that
    uint32_t k_key = 0;
    unsigned long long unused = 0;
    if (d.top_k > 0 && d.top_k < vocab) {
      radix_select(
          vocab, (unsigned long long)d.top_k, radix,
          [&](int64_t j, uint32_t& k) {
            k = unsigned_key(r.v(j));
            return 1ull;
          },
          &k_key, &unused);
    }
    auto candidate = [&](float v) { return unsigned_key(v) >= k_key; };
    // top-p: the cut value's key; every candidate above it stays, and of its ties (in id order)
    // those with the mass ranked above them below the target
    uint32_t p_key = 0;
    int32_t p_last = int32_t(vocab);
    if (d.top_p < 1.0f) {
      unsigned long long part = 0;
      for (int64_t j = threadIdx.x; j < vocab; j += kThreads) {
        const float v = r.v(j);
        if (candidate(v)) part += fixed_mass(r.w(v));
      }
      unsigned long long total = 0;
      (void)block_exclusive_scan(part, scan_u64, &total);
      const unsigned long long target =
          max(1ull, (unsigned long long)(double(d.top_p) * double(total)));
      unsigned long long above = 0;
      const bool cut = radix_select(
          vocab, target, radix,
          [&](int64_t j, uint32_t& k) {
            const float v = r.v(j);
            k = unsigned_key(v);
            return candidate(v) ? fixed_mass(r.w(v)) : 0ull;
          },
          &p_key, &above);
      if (cut) {
        const int64_t slice = (vocab + kThreads - 1) / kThreads;
        const int64_t begin = min(vocab, int64_t(threadIdx.x) * slice);
        const int64_t end = min(vocab, begin + slice);
        unsigned long long tie_mass = 0;
        for (int64_t j = begin; j < end; ++j) {
          const float v = r.v(j);
          if (candidate(v) && unsigned_key(v) == p_key) tie_mass += fixed_mass(r.w(v));
        }
        unsigned long long ties = 0;
        const unsigned long long before =
            above + block_exclusive_scan(tie_mass, scan_u64, &ties);
        if (threadIdx.x == 0) pick_s = INT32_MAX;
        __syncthreads();
        if (tie_mass > 0 && before < target) {
          unsigned long long running = before;
          for (int64_t j = begin; j < end; ++j) {
            const float v = r.v(j);
            if (!candidate(v) || unsigned_key(v) != p_key) continue;
            running += fixed_mass(r.w(v));
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
    }
    auto kept = [&](int64_t j, float v) {
      if (!candidate(v)) return false;
      const uint32_t key = unsigned_key(v);
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
  return launch_kernel(sample_kernel, unsigned(rows), kThreads, 0, stream, logits, vocab, draws,
                       ids, logprobs, invalid);
}

}  // namespace tandem::cuda
