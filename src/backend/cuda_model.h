// The Llama family's forward pass on one NVIDIA GPU (CUDA ModelBackend): weights uploaded once as
// bf16 with q/k/v and gate/up fused row-wise, the residual stream in f32, bf16 activations into
// cuBLAS GEMMs with f32 accumulation, and a bf16 paged KV cache in GPU memory. Same wiring as
// LlamaModel (HF order), every op a kernel from kernels/cuda. Built only under TANDEM_CUDA.
#pragma once
#include <cublas_v2.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda_buffer.h"
#include "backend/cuda_kv_cache_io.h"
#include "backend/model_backend.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/sampling.cuh"
#include "model/weight_store.h"

namespace tandem {

struct CudaModelOptions {
  int max_num_batched_tokens = 8192;  // activation rows the first workspace is sized for
  // kGraphs: a decode step (every sequence one new token, all sampled) pads its batch to a size
  // bucket and replays a CUDA graph captured once per (batch bucket, block-table bucket).
  ExecutionMode execution = ExecutionMode::kGraphs;
  int device = 0;  // the GPU (ordinal among the visible ones) every allocation and launch uses
};

class CudaModel : public ModelBackend {
 public:
  // Reads <dir>'s config and weights and uploads them. Throws tandem::Error for a bad model, an
  // unsupported one (o_proj bias), no GPU, or too little GPU memory (naming the bytes asked for).
  CudaModel(const std::filesystem::path& dir, const CudaModelOptions& options);
  ~CudaModel() override;
  CudaModel(const CudaModel&) = delete;
  CudaModel& operator=(const CudaModel&) = delete;

  const ModelConfig& config() const override { return config_; }
  void allocate_kv_cache(int64_t num_blocks, int block_size) override;
  KvCacheShape kv_cache_shape() const override { return kv_shape_; }
  void forward(const ForwardBatch& batch, float* logits) override;
  bool has_device_sampler() const override { return true; }
  void forward_sampled(const ForwardBatch& batch, std::span<const DeviceDraw> draws,
                       std::span<const int32_t> host_rows, float* logits,
                       DevicePicks& picks) override;

  std::optional<uint64_t> kv_memory_budget(double fraction) const override;
  KvCacheIo* device_kv_cache_io() override { return kv_io_.get(); }
  double device_seconds() const override { return device_seconds_; }
  void warm_up(int max_num_seqs, int max_num_batched_tokens, int max_model_len) override;
  // Waits for the GPU (benchmarks time whole steps).
  void synchronize();
  // Decode graphs captured so far, one per (batch bucket, block-table bucket).
  size_t decode_graph_count() const { return graphs_.size(); }

 private:
  using bf16 = cuda::bf16;
  struct Layer {
    cuda::DeviceBuffer<bf16> input_norm;  // (hidden)
    cuda::DeviceBuffer<bf16> qkv;         // (heads*hd + 2*kv*hd, hidden) q | k | v rows
    cuda::DeviceBuffer<bf16> qkv_bias;    // (heads*hd + 2*kv*hd) or empty
    cuda::DeviceBuffer<bf16> o;           // (hidden, heads*hd)
    cuda::DeviceBuffer<bf16> post_norm;   // (hidden)
    cuda::DeviceBuffer<bf16> gate_up;     // (2*inter, hidden) gate | up rows
    cuda::DeviceBuffer<bf16> down;        // (hidden, inter)
  };
  // Per-step device buffers, grown on demand to the largest batch seen.
  struct Workspace {
    int64_t rows = 0;                       // token rows the activation buffers hold
    int64_t logit_rows = 0;                 // logits rows they hold
    cuda::DeviceBuffer<float> hidden;       // (rows, hidden) f32 residual stream
    cuda::DeviceBuffer<bf16> normed;        // (rows, hidden)
    cuda::DeviceBuffer<bf16> qkv;           // (rows, qkv_dim)
    cuda::DeviceBuffer<bf16> attn;          // (rows, heads*hd)
    cuda::DeviceBuffer<bf16> proj;          // (rows, hidden) o_proj / down_proj output, added to
                                            // `hidden` by the next RMSNorm
    cuda::DeviceBuffer<bf16> gate_up;       // (rows, 2*inter)
    cuda::DeviceBuffer<bf16> act;           // (rows, inter)
    cuda::DeviceBuffer<bf16> last;          // (logit_rows, hidden) final-normed rows
    cuda::DeviceBuffer<float> tail_hidden;  // (logit_rows, hidden) residual rows the last layer
                                            // finishes alone (sampled_rows_batch)
    cuda::DeviceBuffer<bf16> tail_q;        // (logit_rows, heads*hd) their queries
    cuda::DeviceBuffer<float> logits;       // (logit_rows, vocab)
    cuda::DeviceBuffer<int32_t> picks;      // (3, logit_rows) ids | logprobs (f32) | invalid
    cuda::DeviceBuffer<cuda::TokenDraw> draws;  // (logit_rows)
    cuda::DeviceBuffer<float> attn_ws;          // split-KV partials
    cuda::DeviceBuffer<int32_t> ints;           // batch metadata, packed (see upload_batch)
    cuda::DeviceBuffer<int64_t> slots;          // (rows) slot_mapping
  };
  // Device pointers into Workspace::ints for one batch.
  struct BatchView {
    const int32_t* token_ids;
    const int32_t* positions;
    const int32_t* query_start;
    const int32_t* context_lens;
    const int32_t* block_tables;
    const int32_t* logits_indices;
    const int64_t* slots;
    // The sampled_rows_batch's query_start, context_lens and block_tables; null without one.
    const int32_t* tail_query_start = nullptr;
    const int32_t* tail_context_lens = nullptr;
    const int32_t* tail_block_tables = nullptr;
  };
  // The rows a layer's attention and MLP run for: the whole batch, or the last layer's sampled
  // rows (their residual and query rows gathered to the front of buffers of their own).
  struct FinishedRows {
    float* residual = nullptr;  // (n, hidden)
    const bf16* q = nullptr;    // (n, q_stride)
    int64_t q_stride = 0;
    int64_t n = 0;
    int32_t num_seqs = 0;
    int32_t max_query_len = 0;
    int32_t max_context_len = 0;
    int32_t max_blocks_per_seq = 0;
    const int32_t* query_start = nullptr;
    const int32_t* context_lens = nullptr;
    const int32_t* block_tables = nullptr;
  };

  // A captured decode step and the workspace generation its baked-in pointers belong to.
  struct DecodeGraph {
    cudaGraphExec_t exec = nullptr;
    uint64_t generation = 0;
  };

  void upload_weights();
  // Validates and enqueues `batch` (a graph replay or kernel by kernel); logits land in ws_.logits.
  void enqueue_step(const ForwardBatch& batch);
  // After the step's stream synchronized: adds the time between the step's events.
  void count_device_time();
  // Enqueues the whole forward pass of `batch` (already uploaded as `view`, with `tail`) on
  // stream_; `max_context_len` sizes the attention grid (a graph bucket's bound, or the batch's
  // own). `tail`: sampled_rows_batch(batch) when the last layer finishes only those rows.
  void enqueue_forward(const ForwardBatch& batch, const BatchView& view, int32_t max_context_len,
                       const ForwardBatch* tail = nullptr);
  // Kernel by kernel: sizes the workspace, uploads `batch` (with its sampled_rows_batch when the
  // last layer can finish those rows alone) and enqueues its forward pass.
  void enqueue_eager(const ForwardBatch& batch, int32_t max_context_len);
  void forward_graph(const ForwardBatch& batch);
  bool graph_eligible(const ForwardBatch& batch) const;
  void clear_graphs();
  // Tensors (name, rows) of `cols` columns each (cols 0: 1-D), stacked row-wise as bf16.
  cuda::DeviceBuffer<bf16> upload_parts(const std::vector<std::pair<std::string, int64_t>>& parts,
                                        int64_t cols);
  void ensure_workspace(int64_t rows, int64_t logit_rows);
  BatchView upload_batch(const ForwardBatch& batch, const ForwardBatch* tail = nullptr);
  // A layer's input norm, q/k/v projection, RoPE and K/V store for all n rows of the batch.
  void project_and_store(int layer, int64_t n, const BatchView& view);
  // The rest of the layer (attention, o_proj, MLP) for `rows`; its output lands in ws_.proj.
  void finish_layer(int layer, const FinishedRows& rows);
  // y (m, n) = x (m, k) W^T in bf16: few_rows_gemm for a decode step's few rows, cuBLAS otherwise
  // (the same bits either way). With silu_mul, W is [gate; up] and y = silu(gate) * up (m, n / 2).
  void project(const bf16* x, const bf16* w, bf16* y, int64_t m, int64_t n, int64_t k,
               bool silu_mul, const char* what);
  // The last layer when only `tail`'s rows need finishing.
  void last_layer_for_sampled_rows(const ForwardBatch& batch, const BatchView& view,
                                   const ForwardBatch& tail, int32_t max_context_len);

  ModelConfig config_;
  int device_;
  int32_t split_kv_splits_per_block_ = 0;  // 0: split-KV's launcher chooses
  WeightStore weights_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t step_start_ = nullptr, step_end_ = nullptr;  // around each step, for device_seconds
  double device_seconds_ = 0.0;
  cublasHandle_t cublas_ = nullptr;
  std::vector<Layer> layers_;            // (num_layers)
  cuda::DeviceBuffer<bf16> embed_;       // (vocab, hidden)
  cuda::DeviceBuffer<bf16> final_norm_;  // (hidden)
  cuda::DeviceBuffer<bf16> lm_head_;     // (vocab, hidden); empty when tied to embed_
  cuda::DeviceBuffer<float> inv_freq_;   // (hd / 2) RoPE inverse frequencies
  KvCacheShape kv_shape_;
  std::vector<cuda::DeviceBuffer<bf16>> k_cache_, v_cache_;  // (layers) x (slots, kv, hd)
  Workspace ws_;
  uint64_t ws_generation_ = 0;               // bumped whenever a workspace buffer moves
  std::vector<int32_t> host_ints_;           // staging for Workspace::ints
  std::vector<int32_t> host_picks_;          // staging for Workspace::picks
  std::vector<cuda::TokenDraw> host_draws_;  // staging for Workspace::draws
  ExecutionMode execution_;
  std::map<std::pair<int, int>, DecodeGraph> graphs_;  // (batch bucket, blocks bucket) -> graph
  std::unique_ptr<CudaKvCacheIo> kv_io_;               // KV transfer's access to k_cache_/v_cache_
};

}  // namespace tandem
