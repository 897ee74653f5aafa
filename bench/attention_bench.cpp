// attention_bench: the prefill attention of Llama-3.1-8B (32 query heads, 8 KV heads, head_dim
// 128) over a paged bf16 KV cache of 16-token blocks in shuffled order, for one sequence of each
// given length, through the flash kernel on wgmma with TMA loads (what runs), on wgmma with
// cp.async loads and on mma.sync. Prints one JSON object: per length and kernel the median
// milliseconds of 10 runs and the causal attention TFLOP/s (4 * head_dim * heads * L (L + 1) / 2).
// Usage: attention_bench [lengths...]   (default 2048 7500)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <vector>

#include "core/utc_time.h"
#include "kernels/cuda/paged_attention.cuh"

namespace {

using tandem::cuda::bf16;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "attention_bench: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

template <typename T>
T* upload(const std::vector<T>& v) {
  T* d = nullptr;
  check(cudaMalloc(&d, v.size() * sizeof(T)), "cudaMalloc");
  check(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  return d;
}

std::vector<bf16> random_bf16(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<bf16> v(n);
  for (bf16& x : v) x = __float2bfloat16(dist(rng));
  return v;
}

constexpr int kHeads = 32, kKvHeads = 8, kHeadDim = 128, kBlock = 16;

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> lengths;
  for (int i = 1; i < argc; ++i) lengths.push_back(std::atoi(argv[i]));
  if (lengths.empty()) lengths = {2048, 7500};
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::mt19937 rng(7);
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "event");
  check(cudaEventCreate(&stop), "event");
  nlohmann::json runs = nlohmann::json::array();
  for (const int len : lengths) {
    const int blocks = (len + kBlock - 1) / kBlock;
    std::vector<int32_t> table(static_cast<size_t>(blocks));
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng);
    const size_t kv = size_t(blocks) * kBlock * kKvHeads * kHeadDim;
    bf16* q = upload(random_bf16(size_t(len) * kHeads * kHeadDim, rng));
    bf16* k = upload(random_bf16(kv, rng));
    bf16* v = upload(random_bf16(kv, rng));
    bf16* out = nullptr;
    check(cudaMalloc(&out, size_t(len) * kHeads * kHeadDim * sizeof(bf16)), "out");
    int32_t* query_start = upload(std::vector<int32_t>{0, len});
    int32_t* context_lens = upload(std::vector<int32_t>{len});
    int32_t* block_table = upload(table);
    tandem::cuda::PagedAttentionParams p;
    p.q = q;
    p.q_stride = int64_t(kHeads) * kHeadDim;
    p.k_cache = k;
    p.v_cache = v;
    p.out = out;
    p.query_start = query_start;
    p.context_lens = context_lens;
    p.block_tables = block_table;
    p.max_blocks_per_seq = blocks;
    p.num_seqs = 1;
    p.num_tokens = len;
    p.max_query_len = len;
    p.max_context_len = len;
    p.num_heads = kHeads;
    p.num_kv_heads = kKvHeads;
    p.head_dim = kHeadDim;
    p.block_size = kBlock;
    p.num_cache_slots = int64_t(blocks) * kBlock;
    p.scale = 0.08838834764831845f;
    auto median_ms = [&](tandem::cuda::AttentionKernel kernel) {
      std::vector<float> ms(12);
      for (float& t : ms) {
        check(cudaEventRecord(start), "record");
        check(tandem::cuda::paged_attention(p, nullptr, kernel), "paged_attention");
        check(cudaEventRecord(stop), "record");
        check(cudaEventSynchronize(stop), "sync");
        check(cudaEventElapsedTime(&t, start, stop), "elapsed");
      }
      ms.erase(ms.begin(), ms.begin() + 2);  // warm-up
      std::sort(ms.begin(), ms.end());
      return double(ms[ms.size() / 2]);
    };
    const double median = median_ms(tandem::cuda::AttentionKernel::kTensorCore);
    const double cp_async = median_ms(tandem::cuda::AttentionKernel::kTensorCoreCpAsync);
    const double mma_sync = median_ms(tandem::cuda::AttentionKernel::kTensorCoreMmaSync);
    const double flops = 4.0 * kHeadDim * kHeads * (double(len) * (len + 1) / 2);
    runs.push_back({{"tokens", len},
                    {"ms", median},
                    {"tflops", flops / (median * 1e9)},
                    {"cp_async_ms", cp_async},
                    {"cp_async_tflops", flops / (cp_async * 1e9)},
                    {"mma_sync_ms", mma_sync},
                    {"mma_sync_tflops", flops / (mma_sync * 1e9)}});
    for (void* ptr : {(void*)q, (void*)k, (void*)v, (void*)out, (void*)query_start,
                      (void*)context_lens, (void*)block_table}) {
      cudaFree(ptr);
    }
  }
  const nlohmann::json result = {{"what", "attention_bench"},
                                 {"gpu", prop.name},
                                 {"date", tandem::utc_now_iso8601()},
                                 {"runs", runs}};
  std::printf("%s\n", result.dump().c_str());
  return 0;
}
