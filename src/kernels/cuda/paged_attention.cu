// paged_attention: kernels, then launchers.
//  - split_kv_kernel: grid (token, kv head, split). A block loads the token's GQA group of queries,
//    walks its share of the visible keys in tiles of kTile (one key per thread for the scores, one
//    output element per thread for P.V) with an online softmax, and writes either the final output
//    or an unnormalized partial (o, max, sum) that combine_kernel merges across splits.
//  - tensor_core_kernel: grid (query tile of 64 rows of one sequence, q head). Flash-attention-2
//    style with WMMA bf16 16x16x16 fragments: each of 4 warps owns 16 query rows; per 64-key tile,
//    S = Q K^T into shared f32, a masked online softmax row by row, O = O * alpha + P V with the
//    running O kept in shared f32.
#include <mma.h>

#include <algorithm>

#include "kernels/cuda/dispatch.cuh"
#include "kernels/cuda/paged_attention.cuh"

namespace tandem::cuda {
namespace {

constexpr int kMaxGroup = 8;           // query heads per KV head the split-KV kernel supports
constexpr int kTile = 128;             // keys per split-KV tile = threads per block
constexpr int kMaxSplitRows = 1024;    // num_splits * num_tokens bound (sizes the workspace)
constexpr int kMinKeysPerSplit = 256;  // a split shorter than this costs more than it saves
constexpr int kTargetBlocks = 264;     // two waves of blocks on a 132-SM H100

// The sequence that query row t belongs to: the last s with query_start[s] <= t.
__device__ __forceinline__ int find_seq(const int32_t* query_start, int num_seqs, int t) {
  int lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (query_start[mid] <= t) lo = mid; else hi = mid - 1;
  }
  return lo;
}

__device__ __forceinline__ int64_t slot_of(const int32_t* table, int block_size, int key) {
  return int64_t(table[key / block_size]) * block_size + key % block_size;
}

// Loads 8 bf16 at p (16-byte aligned) as floats.
__device__ __forceinline__ void load8(const bf16* p, float* out) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

// ---- split-KV kernel ---------------------------------------------------------------------------

template <int HD>
__global__ void __launch_bounds__(kTile) split_kv_kernel(PagedAttentionParams p, int num_splits,
                                                         int keys_per_split) {
  constexpr int kMaxHd = HD > 0 ? HD : kMaxGenericHeadDim;
  constexpr int kOutPerThread = (kMaxGroup * kMaxHd + kTile - 1) / kTile;
  const int hd = HD > 0 ? HD : p.head_dim;
  const int t = blockIdx.x, kvh = blockIdx.y, split = blockIdx.z;
  const int group = p.num_heads / p.num_kv_heads;
  const int seq = find_seq(p.query_start, p.num_seqs, t);
  const int q_end = p.query_start[seq + 1];
  const int len = p.context_lens[seq] - (q_end - t) + 1;  // visible keys [0, len)
  const int begin = split * keys_per_split, end = min(len, begin + keys_per_split);
  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const int64_t kv_stride = int64_t(p.num_kv_heads) * hd;

  __shared__ float q_s[kMaxGroup][kMaxHd];     // (group, hd) queries, pre-scaled
  __shared__ float score_s[kMaxGroup][kTile];  // (group, tile) scores, then probabilities
  __shared__ int64_t slot_s[kTile];            // (tile) cache slot of each key
  __shared__ float m_s[kMaxGroup], l_s[kMaxGroup], alpha_s[kMaxGroup];

  for (int i = threadIdx.x; i < group * hd; i += kTile) {
    const int g = i / hd, d = i % hd;
    q_s[g][d] = to_float(p.q[int64_t(t) * p.q_stride + int64_t(kvh * group + g) * hd + d]) * p.scale;
  }
  if (threadIdx.x < kMaxGroup) {
    m_s[threadIdx.x] = -INFINITY;
    l_s[threadIdx.x] = 0.0f;
  }
  float acc[kOutPerThread];
  for (int k = 0; k < kOutPerThread; ++k) acc[k] = 0.0f;
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int tile = begin; tile < end; tile += kTile) {
    const int key = tile + threadIdx.x;
    float s[kMaxGroup];
    for (int g = 0; g < kMaxGroup; ++g) s[g] = 0.0f;
    if (key < end) {
      const int64_t slot = slot_of(table, p.block_size, key);
      slot_s[threadIdx.x] = slot;
      const bf16* k_row = p.k_cache + slot * kv_stride + int64_t(kvh) * hd;
      for (int d = 0; d < hd; d += 8) {
        float kf[8];
        load8(k_row + d, kf);
        for (int g = 0; g < kMaxGroup; ++g) {
          if (g >= group) break;
          for (int e = 0; e < 8; ++e) s[g] += q_s[g][d + e] * kf[e];
        }
      }
    }
    for (int g = 0; g < group; ++g) score_s[g][threadIdx.x] = key < end ? s[g] : -INFINITY;
    __syncthreads();
    // Online softmax: warp w updates heads w, w + 4, ...
    for (int g = warp; g < group; g += kTile / 32) {
      float mx = -INFINITY;
      for (int j = lane; j < kTile; j += 32) mx = fmaxf(mx, score_s[g][j]);
      mx = warp_max(mx);
      const float m_new = fmaxf(m_s[g], mx);  // finite: the tile holds at least one key
      float sum = 0.0f;
      for (int j = lane; j < kTile; j += 32) {
        const float e = __expf(score_s[g][j] - m_new);
        score_s[g][j] = e;
        sum += e;
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float alpha = __expf(m_s[g] - m_new);
        alpha_s[g] = alpha;
        l_s[g] = l_s[g] * alpha + sum;
        m_s[g] = m_new;
      }
    }
    __syncthreads();
    const int count = min(kTile, end - tile);
    for (int k = 0; k < kOutPerThread; ++k) {
      const int i = threadIdx.x + k * kTile;
      if (i >= group * hd) break;
      const int g = i / hd, d = i % hd;
      float a = acc[k] * alpha_s[g];
      const bf16* v_col = p.v_cache + int64_t(kvh) * hd + d;
      for (int j = 0; j < count; ++j) a += score_s[g][j] * to_float(v_col[slot_s[j] * kv_stride]);
      acc[k] = a;
    }
    __syncthreads();
  }

  for (int k = 0; k < kOutPerThread; ++k) {
    const int i = threadIdx.x + k * kTile;
    if (i >= group * hd) break;
    const int g = i / hd, d = i % hd, head = kvh * group + g;
    if (num_splits == 1) {
      const float l = l_s[g];
      p.out[(int64_t(t) * p.num_heads + head) * hd + d] = to_bf16(l > 0.0f ? acc[k] / l : 0.0f);
    } else {
      // workspace: o (splits, tokens, heads, hd), then m and l (splits, tokens, heads) each.
      const int64_t row = (int64_t(split) * p.num_tokens + t) * p.num_heads + head;
      p.workspace[row * hd + d] = acc[k];
      if (d == 0) {
        const int64_t ml = int64_t(num_splits) * p.num_tokens * p.num_heads * hd;
        p.workspace[ml + row] = m_s[g];
        p.workspace[ml + int64_t(num_splits) * p.num_tokens * p.num_heads + row] = l_s[g];
      }
    }
  }
}

// Merges the splits' partials of one (token, head): out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s.
__global__ void combine_kernel(PagedAttentionParams p, int num_splits) {
  const int t = blockIdx.x, head = blockIdx.y, hd = p.head_dim;
  const int64_t rows = int64_t(num_splits) * p.num_tokens * p.num_heads;
  const float* m = p.workspace + rows * hd;
  const float* l = m + rows;
  float mx = -INFINITY;
  for (int s = 0; s < num_splits; ++s) mx = fmaxf(mx, m[(int64_t(s) * p.num_tokens + t) * p.num_heads + head]);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float num = 0.0f, den = 0.0f;
    for (int s = 0; s < num_splits; ++s) {
      const int64_t row = (int64_t(s) * p.num_tokens + t) * p.num_heads + head;
      if (m[row] == -INFINITY) continue;  // a split past this row's visible keys
      const float w = __expf(m[row] - mx);
      num += w * p.workspace[row * hd + d];
      den += w * l[row];
    }
    p.out[(int64_t(t) * p.num_heads + head) * hd + d] = to_bf16(den > 0.0f ? num / den : 0.0f);
  }
}

// ---- tensor-core (flash) kernel ----------------------------------------------------------------

namespace wmma = nvcuda::wmma;
constexpr int kBq = 64;       // query rows per block (16 per warp)
constexpr int kBk = 64;       // keys per tile
constexpr int kWarps = 4;
constexpr int kPad = 8;       // bf16 row padding against shared-memory bank conflicts

template <int HD>
struct FlashSmem {
  static constexpr int kLd = HD + kPad;
  bf16 q[kBq][kLd];             // (64 rows, hd) this block's queries
  bf16 k[kBk][kLd];             // (64 keys, hd)
  bf16 v[kBk][kLd];             // (64 keys, hd)
  float s[kWarps][16][kBk];     // (warp, 16 rows, 64 keys) scores
  bf16 pr[kWarps][16][kBk];     // (warp, 16 rows, 64 keys) probabilities
  float o[kWarps][16][HD];      // (warp, 16 rows, hd) running unnormalized output
};

// Copies rows [row0, row0 + 64) of keys (or values) of head kvh into dst, zeros past `limit`.
template <int HD>
__device__ void load_kv_tile(const bf16* cache, const int32_t* table, int block_size,
                             int64_t kv_stride, int kvh, int row0, int limit,
                             bf16 (*dst)[HD + kPad]) {
  constexpr int kChunks = HD / 8;
  for (int i = threadIdx.x; i < kBk * kChunks; i += kWarps * 32) {
    const int r = i / kChunks, c = (i % kChunks) * 8, key = row0 + r;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (key < limit) {
      val = *reinterpret_cast<const uint4*>(cache + slot_of(table, block_size, key) * kv_stride +
                                            int64_t(kvh) * HD + c);
    }
    *reinterpret_cast<uint4*>(&dst[r][c]) = val;
  }
}

template <int HD>
__global__ void __launch_bounds__(kWarps * 32) tensor_core_kernel(PagedAttentionParams p,
                                                                  int tiles_per_seq) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  FlashSmem<HD>& sm = *reinterpret_cast<FlashSmem<HD>*>(smem_raw);
  const int seq = blockIdx.x / tiles_per_seq, qtile = blockIdx.x % tiles_per_seq;
  const int head = blockIdx.y, kvh = head / (p.num_heads / p.num_kv_heads);
  const int q_begin = p.query_start[seq], q_len = p.query_start[seq + 1] - q_begin;
  const int row0 = qtile * kBq;
  if (row0 >= q_len) return;
  const int rows = min(kBq, q_len - row0);
  const int ctx = p.context_lens[seq];
  const int first_pos = ctx - q_len + row0;        // position of this tile's row 0
  const int key_limit = first_pos + rows;          // keys [0, key_limit) are visible to some row
  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const int64_t kv_stride = int64_t(p.num_kv_heads) * HD;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  constexpr int kChunks = HD / 8;
  for (int i = threadIdx.x; i < kBq * kChunks; i += kWarps * 32) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r < rows) {
      val = *reinterpret_cast<const uint4*>(p.q + int64_t(q_begin + row0 + r) * p.q_stride +
                                            int64_t(head) * HD + c);
    }
    *reinterpret_cast<uint4*>(&sm.q[r][c]) = val;
  }
  for (int i = lane; i < 16 * HD; i += 32) sm.o[warp][i / HD][i % HD] = 0.0f;

  // Lane pair (2r, 2r + 1) owns row r of the warp's 16: columns [half * 32, half * 32 + 32) of S
  // and [half * HD / 2, (half + 1) * HD / 2) of O.
  const int r = lane / 2, half = lane % 2;
  const int my_row = warp * 16 + r;
  const int my_pos = first_pos + min(my_row, rows - 1);  // padding rows mirror the last real row
  float m = -INFINITY, l = 0.0f;

  for (int kt = 0; kt < key_limit; kt += kBk) {
    __syncthreads();  // the previous tile's K/V are no longer read
    load_kv_tile<HD>(p.k_cache, table, p.block_size, kv_stride, kvh, kt, key_limit, sm.k);
    load_kv_tile<HD>(p.v_cache, table, p.block_size, kv_stride, kvh, kt, key_limit, sm.v);
    __syncthreads();

    for (int n = 0; n < kBk / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> s_frag;
      wmma::fill_fragment(s_frag, 0.0f);
      for (int k = 0; k < HD / 16; ++k) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> b;
        wmma::load_matrix_sync(a, &sm.q[warp * 16][k * 16], FlashSmem<HD>::kLd);
        wmma::load_matrix_sync(b, &sm.k[n * 16][k * 16], FlashSmem<HD>::kLd);
        wmma::mma_sync(s_frag, a, b, s_frag);
      }
      wmma::store_matrix_sync(&sm.s[warp][0][n * 16], s_frag, kBk, wmma::mem_row_major);
    }
    __syncwarp();

    float mx = -INFINITY;
    for (int c = half * 32; c < half * 32 + 32; ++c) {
      const int key = kt + c;
      const float s = key <= my_pos ? sm.s[warp][r][c] * p.scale : -INFINITY;
      sm.s[warp][r][c] = s;
      mx = fmaxf(mx, s);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float m_new = fmaxf(m, mx);
    // A row whose keys all lie past it in this tile keeps m = -inf until it sees one; guard exp.
    const float alpha = m_new == -INFINITY ? 1.0f : __expf(m - m_new);
    float sum = 0.0f;
    for (int c = half * 32; c < half * 32 + 32; ++c) {
      const float e = m_new == -INFINITY ? 0.0f : __expf(sm.s[warp][r][c] - m_new);
      const bf16 eb = to_bf16(e);
      sm.pr[warp][r][c] = eb;
      sum += to_float(eb);  // normalize by what P.V actually sums
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * alpha + sum;
    m = m_new;
    for (int c = half * (HD / 2); c < (half + 1) * (HD / 2); ++c) sm.o[warp][r][c] *= alpha;
    __syncwarp();

    for (int n = 0; n < HD / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> o_frag;
      wmma::load_matrix_sync(o_frag, &sm.o[warp][0][n * 16], HD, wmma::mem_row_major);
      for (int k = 0; k < kBk / 16; ++k) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> b;
        wmma::load_matrix_sync(a, &sm.pr[warp][0][k * 16], kBk);
        wmma::load_matrix_sync(b, &sm.v[k * 16][n * 16], FlashSmem<HD>::kLd);
        wmma::mma_sync(o_frag, a, b, o_frag);
      }
      wmma::store_matrix_sync(&sm.o[warp][0][n * 16], o_frag, HD, wmma::mem_row_major);
    }
    __syncwarp();
  }

  if (my_row < rows) {
    bf16* out = p.out + (int64_t(q_begin + my_row) * p.num_heads + head) * HD;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int c = half * (HD / 2); c < (half + 1) * (HD / 2); ++c) {
      out[c] = to_bf16(sm.o[warp][r][c] * inv);
    }
  }
}

// ---- launchers ---------------------------------------------------------------------------------

bool valid(const PagedAttentionParams& p) {
  return p.num_heads > 0 && p.num_kv_heads > 0 && p.num_heads % p.num_kv_heads == 0 &&
         p.num_heads / p.num_kv_heads <= kMaxGroup && p.head_dim > 0 && p.head_dim % 8 == 0 &&
         p.head_dim <= kMaxGenericHeadDim && p.block_size > 0 && p.num_seqs > 0 &&
         p.q_stride >= int64_t(p.num_heads) * p.head_dim && p.max_query_len > 0 &&
         p.max_context_len >= p.max_query_len && p.q && p.k_cache && p.v_cache && p.out &&
         p.query_start && p.context_lens && p.block_tables;
}

cudaError_t launch_split_kv(const PagedAttentionParams& p, cudaStream_t stream) {
  const int64_t base_blocks = int64_t(p.num_tokens) * p.num_kv_heads;
  int splits = int((kTargetBlocks + base_blocks - 1) / base_blocks);
  splits = std::min(splits, (p.max_context_len + kMinKeysPerSplit - 1) / kMinKeysPerSplit);
  splits = std::min(splits, kMaxSplitRows / std::max(1, p.num_tokens));
  const size_t need = size_t(std::max(splits, 1)) * p.num_tokens * p.num_heads * (p.head_dim + 2) * 4;
  if (splits > 1 && (!p.workspace || p.workspace_bytes < need)) splits = 1;
  splits = std::max(splits, 1);
  const int keys_per_split =
      ((p.max_context_len + splits - 1) / splits + kTile - 1) / kTile * kTile;
  const dim3 grid(unsigned(p.num_tokens), unsigned(p.num_kv_heads), unsigned(splits));
  dispatch_head_dim(p.head_dim, [&](auto hd) {
    split_kv_kernel<decltype(hd)::value><<<grid, kTile, 0, stream>>>(p, splits, keys_per_split);
  });
  if (splits > 1) {
    combine_kernel<<<dim3(unsigned(p.num_tokens), unsigned(p.num_heads)), 128, 0, stream>>>(
        p, splits);
  }
  return last_launch_error();
}

cudaError_t launch_tensor_core(const PagedAttentionParams& p, cudaStream_t stream) {
  return dispatch_tensor_core_head_dim(p.head_dim, cudaErrorNotSupported, [&](auto hd) {
    constexpr int HD = decltype(hd)::value;
    const size_t smem = sizeof(FlashSmem<HD>);
    cudaError_t e = cudaFuncSetAttribute(tensor_core_kernel<HD>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
    const int tiles = (p.max_query_len + kBq - 1) / kBq;
    const dim3 grid(unsigned(int64_t(p.num_seqs) * tiles), unsigned(p.num_heads));
    tensor_core_kernel<HD><<<grid, kWarps * 32, smem, stream>>>(p, tiles);
    return last_launch_error();
  });
}

}  // namespace

size_t paged_attention_workspace_bytes(int32_t num_heads, int32_t head_dim) {
  return size_t(kMaxSplitRows) * size_t(num_heads) * size_t(head_dim + 2) * sizeof(float);
}

cudaError_t paged_attention(const PagedAttentionParams& p, cudaStream_t stream,
                            AttentionKernel kernel) {
  if (p.num_tokens == 0) return cudaSuccess;
  if (!valid(p)) return cudaErrorInvalidValue;
  const bool tensor_core_ok = p.head_dim == 64 || p.head_dim == 128;
  if (kernel == AttentionKernel::kAuto) {
    kernel = tensor_core_ok && p.max_query_len >= 16 ? AttentionKernel::kTensorCore
                                                     : AttentionKernel::kSplitKv;
  }
  return kernel == AttentionKernel::kTensorCore ? launch_tensor_core(p, stream)
                                                : launch_split_kv(p, stream);
}

}  // namespace tandem::cuda
