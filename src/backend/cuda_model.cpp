// CudaModel: weight upload (dtype conversion to bf16, fused QKV and gate/up), workspace and KV
// allocation, and the layer loop — the same HF Llama order as LlamaModel:
//   h = embed(ids); per layer: h += o(attn(rope(qkv(n1(h))))); h += down(silu_mul(gate_up(n2(h))));
//   logits = lm_head(norm(h[logits_indices])).
// o_proj / down_proj write bf16 (cuBLAS's fast path, as PyTorch runs them); the next RMSNorm adds
// that output into the f32 residual stream as it normalizes (the final norm only for the rows
// whose logits are wanted). When only each sequence's last token is sampled, the last layer
// finishes those rows alone once every row's K/V is stored (sampled_rows_batch): a 7500-token
// Llama-3.1-8B prefill took 199.7-204.2 ms instead of 206.2-207.7 on an H200.
#include "backend/cuda_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>

#include "core/logging.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/few_rows_gemm.cuh"
#include "kernels/cuda/gather_rows.cuh"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/paged_attention.cuh"
#include "kernels/cuda/rms_norm.cuh"
#include "kernels/cuda/rope_store_kv.cuh"
#include "kernels/cuda/sampling.cuh"
#include "kernels/cuda/silu_mul.cuh"
#include "model/sampled_rows.h"

namespace tandem {
namespace {

using cuda::check_cublas;
using cuda::check_cuda;

constexpr int64_t kConvertChunk = int64_t(1) << 22;  // elements converted per host pass
constexpr int kInitialLogitRows = 256;
constexpr int kMaxGraphBatch = 256;  // larger decode batches run eagerly
constexpr int kMinGraphBlocks = 64;  // block-table buckets: powers of two from here

// Decode batch sizes are padded up to one of these, so few graphs cover every size.
int graph_batch_bucket(int n) {
  for (int b : {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256}) {
    if (n <= b) return b;
  }
  return n;
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  std::vector<float> inv = cpu::rope_default_inv_freq(c.head_dim, c.rope.theta);
  if (c.rope.scaling == RopeScalingType::kLinear) cpu::rope_scale_linear(inv, c.rope.factor);
  if (c.rope.scaling == RopeScalingType::kLlama3) {
    cpu::rope_scale_llama3(inv, {c.rope.factor, c.rope.low_freq_factor, c.rope.high_freq_factor,
                                 c.rope.original_max_position});
  }
  return inv;
}

// TANDEM_SPLIT_KV_SPLITS_PER_BLOCK=1|2|4 forces the splits a decode split-KV block walks (for
// timing them: a row's bits are the same for every choice); unset: the launcher chooses (0).
int32_t split_kv_splits_per_block_from_env() {
  const char* v = std::getenv("TANDEM_SPLIT_KV_SPLITS_PER_BLOCK");
  if (!v || !*v) return 0;
  const std::string s(v);
  TANDEM_CHECK(s == "1" || s == "2" || s == "4",
               "TANDEM_SPLIT_KV_SPLITS_PER_BLOCK={}: expected 1, 2 or 4 "
               "(or unset: chosen per step)",
               s);
  return std::stoi(s);
}

// A switch the kernels' launchers read (cuda::switched_off_in_env): TANDEM_CUDA_PDL=0 turns
// programmatic dependent launch off, TANDEM_FEW_ROWS_GEMM=0 runs every projection on cuBLAS; 1 or
// unset leaves the path on. Any other value is refused here rather than read as "on".
void check_switch_from_env(const char* name, const char* off_means) {
  const char* v = std::getenv(name);
  TANDEM_CHECK(!v || !*v || std::strcmp(v, "0") == 0 || std::strcmp(v, "1") == 0,
               "{}={}: expected 0 ({}) or 1 (the default)", name, v ? v : "", off_means);
}

// Copies `count` elements of tensor `t` (any checkpoint dtype) to `dst` on the GPU as bf16.
void upload_as_bf16(const TensorRef& t, int64_t count, cuda::bf16* dst) {
  if (t.dtype == DType::kBF16) {
    check_cuda(cudaMemcpy(dst, t.data, size_t(count) * 2, cudaMemcpyHostToDevice), "weight upload");
    return;
  }
  std::vector<float> f32(size_t(std::min(count, kConvertChunk)));
  std::vector<uint16_t> b16(f32.size());
  const auto* src = static_cast<const uint8_t*>(t.data);
  for (int64_t off = 0; off < count; off += kConvertChunk) {
    const int64_t len = std::min(kConvertChunk, count - off);
    convert_to_f32(t.dtype, src + size_t(off) * dtype_size(t.dtype), f32.data(), size_t(len));
    for (int64_t i = 0; i < len; ++i) b16[size_t(i)] = f32_to_bf16(f32[size_t(i)]);
    check_cuda(cudaMemcpy(dst + off, b16.data(), size_t(len) * 2, cudaMemcpyHostToDevice),
               "weight upload");
  }
}

// Reallocates `b` when it holds fewer than `count`; bumps `generation` when it does.
template <typename T>
void grow(cuda::DeviceBuffer<T>& b, int64_t count, uint64_t& generation) {
  if (int64_t(b.size()) >= count) return;
  b = cuda::DeviceBuffer<T>(size_t(count));
  ++generation;
}

}  // namespace

CudaModel::CudaModel(const std::filesystem::path& dir, const CudaModelOptions& options)
    : config_(load_model_config(dir)),
      device_(options.device),
      weights_(WeightStore::open(dir)),
      execution_(options.execution) {
  TANDEM_CHECK(config_.model_type == "llama" || config_.model_type == "mistral" ||
                   config_.model_type == "qwen2",
               "CudaModel: unsupported model_type '{}'", config_.model_type);
  TANDEM_CHECK(!(config_.model_type == "llama" && config_.qkv_bias),
               "--device cuda: Llama's attention_bias (an o_proj bias) is not supported on CUDA; "
               "use --device cpu");
  TANDEM_CHECK(cuda::cuda_device_available(),
               "--device cuda: no CUDA device is available (driver or GPU missing)");
  int count = 0;
  check_cuda(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  TANDEM_CHECK(device_ >= 0 && device_ < count,
               "--cuda-device {}: this process sees {} GPU(s) (0..{})", device_, count, count - 1);
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream create");
  check_cuda(cudaEventCreate(&step_start_), "event create");
  check_cuda(cudaEventCreate(&step_end_), "event create");
  check_cublas(cublasCreate(&cublas_), "cublasCreate");
  check_cublas(cublasSetStream(cublas_, stream_), "cublasSetStream");
  // No workspace, so none is allocated during graph capture and cuBLAS picks kernels that need
  // none: without split-K and its separate reduction kernel, decode steps of Llama-3.1-8B on an
  // H200 were 2-3% shorter than with 32 MiB (1 x 7500 4.98 ms against 5.07; prefill the same).
  check_cublas(cublasSetWorkspace(cublas_, nullptr, 0), "cublasSetWorkspace");
  split_kv_splits_per_block_ = split_kv_splits_per_block_from_env();
  check_switch_from_env("TANDEM_CUDA_PDL", "programmatic dependent launch off");
  check_switch_from_env("TANDEM_FEW_ROWS_GEMM", "every projection on cuBLAS");
  kv_shape_ = {config_.num_layers, 0,           kDefaultBlockSize, config_.num_kv_heads,
               config_.head_dim,   DType::kBF16};  // no blocks until allocate_kv_cache
  upload_weights();
  inv_freq_ = cuda::to_device(rope_inv_freq(config_));
  ensure_workspace(std::max(1, options.max_num_batched_tokens), kInitialLogitRows);
}

CudaModel::~CudaModel() {
  cudaSetDevice(device_);
  kv_io_.reset();
  if (stream_) cudaStreamSynchronize(stream_);
  clear_graphs();
  if (cublas_) cublasDestroy(cublas_);
  if (step_start_) cudaEventDestroy(step_start_);
  if (step_end_) cudaEventDestroy(step_end_);
  if (stream_) cudaStreamDestroy(stream_);
}

// The tensors `names`, each (rows_i, cols) (or (rows_i) when cols == 0), stacked row-wise.
cuda::DeviceBuffer<cuda::bf16> CudaModel::upload_parts(
    const std::vector<std::pair<std::string, int64_t>>& parts, int64_t cols) {
  int64_t total = 0;
  for (const auto& part : parts) total += part.second * std::max<int64_t>(cols, 1);
  cuda::DeviceBuffer<bf16> buf{static_cast<size_t>(total)};
  int64_t off = 0;
  for (const auto& [name, rows] : parts) {
    const std::vector<int64_t> shape =
        cols ? std::vector<int64_t>{rows, cols} : std::vector<int64_t>{rows};
    const int64_t count = rows * std::max<int64_t>(cols, 1);
    upload_as_bf16(weights_.get(name, shape), count, buf.data() + off);
    off += count;
  }
  return buf;
}

void CudaModel::upload_weights() {
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size;
  const int64_t q_dim = int64_t(c.num_heads) * c.head_dim;
  const int64_t kv_dim = int64_t(c.num_kv_heads) * c.head_dim;
  embed_ = upload_parts({{"model.embed_tokens.weight", c.vocab_size}}, hidden);
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer l;
    l.input_norm = upload_parts({{p + "input_layernorm.weight", hidden}}, 0);
    l.qkv = upload_parts({{p + "self_attn.q_proj.weight", q_dim},
                          {p + "self_attn.k_proj.weight", kv_dim},
                          {p + "self_attn.v_proj.weight", kv_dim}},
                         hidden);
    if (c.model_type == "qwen2") {
      l.qkv_bias = upload_parts({{p + "self_attn.q_proj.bias", q_dim},
                                 {p + "self_attn.k_proj.bias", kv_dim},
                                 {p + "self_attn.v_proj.bias", kv_dim}},
                                0);
    }
    l.o = upload_parts({{p + "self_attn.o_proj.weight", hidden}}, q_dim);
    l.post_norm = upload_parts({{p + "post_attention_layernorm.weight", hidden}}, 0);
    l.gate_up = upload_parts(
        {{p + "mlp.gate_proj.weight", inter}, {p + "mlp.up_proj.weight", inter}}, hidden);
    l.down = upload_parts({{p + "mlp.down_proj.weight", hidden}}, inter);
    layers_.push_back(std::move(l));
  }
  final_norm_ = upload_parts({{"model.norm.weight", hidden}}, 0);
  if (!c.tie_word_embeddings) lm_head_ = upload_parts({{"lm_head.weight", c.vocab_size}}, hidden);
}

void CudaModel::ensure_workspace(int64_t rows, int64_t logit_rows) {
  const ModelConfig& c = config_;
  const int64_t q_dim = int64_t(c.num_heads) * c.head_dim;
  const int64_t qkv_dim = q_dim + 2 * int64_t(c.num_kv_heads) * c.head_dim;
  if (rows > ws_.rows) {
    ws_.hidden = {};  // free before allocating the larger set
    ws_.hidden = cuda::DeviceBuffer<float>(size_t(rows * c.hidden_size));
    ws_.normed = cuda::DeviceBuffer<bf16>(size_t(rows * c.hidden_size));
    ws_.qkv = cuda::DeviceBuffer<bf16>(size_t(rows * qkv_dim));
    ws_.attn = cuda::DeviceBuffer<bf16>(size_t(rows * q_dim));
    ws_.proj = cuda::DeviceBuffer<bf16>(size_t(rows * c.hidden_size));
    ws_.gate_up = cuda::DeviceBuffer<bf16>(size_t(rows * 2 * c.intermediate_size));
    ws_.act = cuda::DeviceBuffer<bf16>(size_t(rows * c.intermediate_size));
    ws_.slots = cuda::DeviceBuffer<int64_t>(size_t(rows));
    ws_.rows = rows;
    ++ws_generation_;
  }
  if (logit_rows > ws_.logit_rows) {
    ws_.last = cuda::DeviceBuffer<bf16>(size_t(logit_rows * c.hidden_size));
    ws_.tail_hidden = cuda::DeviceBuffer<float>(size_t(logit_rows * c.hidden_size));
    ws_.tail_q = cuda::DeviceBuffer<bf16>(size_t(logit_rows * q_dim));
    ws_.logits = cuda::DeviceBuffer<float>(size_t(logit_rows * c.vocab_size));
    ws_.picks = cuda::DeviceBuffer<int32_t>(size_t(3 * logit_rows));
    ws_.draws = cuda::DeviceBuffer<cuda::TokenDraw>(size_t(logit_rows));
    ws_.logit_rows = logit_rows;
    ++ws_generation_;
  }
  grow(ws_.attn_ws,
       int64_t(cuda::paged_attention_workspace_bytes(c.num_heads, c.head_dim) / sizeof(float)),
       ws_generation_);
}

void CudaModel::allocate_kv_cache(int64_t num_blocks, int block_size) {
  const KvCacheShape shape{config_.num_layers,   num_blocks,       block_size,
                           config_.num_kv_heads, config_.head_dim, DType::kBF16};
  TANDEM_CHECK(num_blocks > 0 && block_size > 0,
               "KV cache: every size must be positive (blocks {}, block_size {})", num_blocks,
               block_size);
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  clear_graphs();
  kv_io_.reset();
  k_cache_.clear();
  v_cache_.clear();
  kv_shape_.num_blocks = 0;
  // One block past the shape's: the scratch block padded decode rows write into.
  const size_t layer_elems = size_t(shape.layer_floats() + shape.block_size * shape.slot_floats());
  for (int l = 0; l < config_.num_layers; ++l) {
    k_cache_.emplace_back(layer_elems);
    v_cache_.emplace_back(layer_elems);
    check_cuda(cudaMemset(k_cache_.back().data(), 0, k_cache_.back().size() * sizeof(bf16)),
               "KV cache clear");
    check_cuda(cudaMemset(v_cache_.back().data(), 0, v_cache_.back().size() * sizeof(bf16)),
               "KV cache clear");
  }
  kv_shape_ = shape;
  CudaKvCacheView view{shape, {}, {}, stream_, device_};
  for (int l = 0; l < config_.num_layers; ++l) {
    view.k_layers.push_back(k_cache_[size_t(l)].data());
    view.v_layers.push_back(v_cache_[size_t(l)].data());
  }
  kv_io_ = std::make_unique<CudaKvCacheIo>(view);
}

std::optional<uint64_t> CudaModel::kv_memory_budget(double fraction) const {
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  size_t free_bytes = 0, total_bytes = 0;
  check_cuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  // What this process may still take: its share of the card minus everything in use now
  // (weights, workspace, other processes), less the KV cache it holds already.
  const double held = double(kv_shape_.num_blocks > 0 ? kv_shape_.total_bytes() : 0);
  const double budget = fraction * double(total_bytes) - double(total_bytes - free_bytes) + held;
  return budget > 0 ? uint64_t(budget) : 0;
}

// Dummy steps over the scratch block past the cache's last (the one padded decode rows use):
// every key and value they store lands there and every block table entry points there. Not
// counted in device_seconds().
void CudaModel::warm_up(int max_num_seqs, int max_num_batched_tokens, int max_model_len) {
  TANDEM_CHECK(kv_shape_.num_blocks > 0, "warm_up: the KV cache is not allocated");
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  const auto start = std::chrono::steady_clock::now();
  const int32_t scratch = int32_t(kv_shape_.num_blocks), bs = kv_shape_.block_size;
  // A prefill of n tokens, then the device sampler on its last row.
  const int32_t n = std::max(1, std::min(max_num_batched_tokens, max_model_len));
  ForwardBatch p;
  p.token_ids.assign(size_t(n), 0);
  p.positions.resize(size_t(n));
  std::iota(p.positions.begin(), p.positions.end(), 0);
  for (int32_t i = 0; i < n; ++i) p.slot_mapping.push_back(int64_t(scratch) * bs + i % bs);
  p.query_start = {0, n};
  p.context_lens = {n};
  p.max_blocks_per_seq = (n + bs - 1) / bs;
  p.block_tables.assign(size_t(p.max_blocks_per_seq), scratch);
  p.logits_indices = {n - 1};
  enqueue_eager(p, n);
  host_draws_ = {{0.5f, 1.0f, 0.9f, 0.05f, 50}};
  check_cuda(cudaMemcpyAsync(ws_.draws.data(), host_draws_.data(), sizeof(cuda::TokenDraw),
                             cudaMemcpyHostToDevice, stream_),
             "draws upload");
  int32_t* out = ws_.picks.data();
  check_cuda(cuda::sample_tokens(ws_.logits.data(), 1, config_.vocab_size, ws_.draws.data(), out,
                                 reinterpret_cast<float*>(out + 1), out + 2, stream_),
             "sample_tokens");
  // Decode steps of one token a sequence at context 1 (the block tables point at the scratch
  // block): with CUDA graphs, every batch bucket up to max_num_seqs', each at every block-table
  // bucket up to max_model_len's that a batch of its size fits in the KV pool at (else the first
  // step whose context crosses into a new bucket would capture one: ~25 ms in a stream's
  // inter-token time); eagerly, one step of one sequence.
  const int32_t most = std::min(std::max(1, max_num_seqs), kMaxGraphBatch);
  const int64_t model_blocks = (int64_t(std::max(1, max_model_len)) + bs - 1) / bs;
  struct DecodeShape {
    int32_t seqs, blocks;
  };
  std::vector<DecodeShape> shapes{{1, 1}};
  if (execution_ == ExecutionMode::kGraphs) {
    shapes.clear();
    for (int32_t b = 1, fewest = 1;; fewest = b + 1, b = graph_batch_bucket(b + 1)) {
      for (int32_t blocks = kMinGraphBlocks;; blocks *= 2) {
        // the fewest sequences and blocks a step of this shape can have must fit in the pool
        const int64_t least_blocks = blocks == kMinGraphBlocks ? 1 : blocks / 2 + 1;
        if (blocks > kMinGraphBlocks && int64_t(fewest) * least_blocks > kv_shape_.num_blocks) {
          break;
        }
        shapes.push_back({b, blocks});
        if (blocks >= model_blocks) break;
      }
      if (b >= most) break;
    }
  }
  for (const DecodeShape& shape : shapes) {
    const int32_t seqs = shape.seqs;
    ForwardBatch d;
    d.token_ids.assign(size_t(seqs), 0);
    d.positions.assign(size_t(seqs), 0);
    d.slot_mapping.assign(size_t(seqs), int64_t(scratch) * bs);
    for (int32_t s = 0; s <= seqs; ++s) d.query_start.push_back(s);
    d.context_lens.assign(size_t(seqs), 1);
    d.max_blocks_per_seq = shape.blocks;
    d.block_tables.assign(size_t(seqs) * size_t(shape.blocks), scratch);
    for (int32_t s = 0; s < seqs; ++s) d.logits_indices.push_back(s);
    if (execution_ == ExecutionMode::kGraphs) {
      forward_graph(d);
    } else {
      enqueue_eager(d, 1);
    }
  }
  synchronize();
  std::string batches;
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (i > 0 && shapes[i].seqs == shapes[i - 1].seqs) continue;
    if (!batches.empty()) batches += '/';
    batches += std::to_string(shapes[i].seqs);
  }
  log_info("cuda: warmed up in {:.2f} s: a {}-token prefill, decode steps of {} sequences{}",
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), n,
           batches,
           execution_ == ExecutionMode::kGraphs
               ? fmt::format(" ({} CUDA graphs captured: every batch and block-table bucket)",
                             shapes.size())
               : std::string());
}

void CudaModel::synchronize() { check_cuda(cudaStreamSynchronize(stream_), "synchronize"); }

CudaModel::BatchView CudaModel::upload_batch(const ForwardBatch& b, const ForwardBatch* tail) {
  // ints: token_ids (n) | positions (n) | query_start (s + 1) | context_lens (s) |
  //       block_tables (s * max_blocks) | logits_indices (m) [| the tail's query_start (m + 1) |
  //       context_lens (m) | block_tables (m * max_blocks)]
  host_ints_.clear();
  const auto append = [&](const std::vector<int32_t>& v) {
    const size_t at = host_ints_.size();
    host_ints_.insert(host_ints_.end(), v.begin(), v.end());
    return at;
  };
  const size_t ids = append(b.token_ids), pos = append(b.positions), qs = append(b.query_start),
               ctx = append(b.context_lens), tables = append(b.block_tables),
               logits = append(b.logits_indices);
  size_t tail_qs = 0, tail_ctx = 0, tail_tables = 0;
  if (tail) {
    tail_qs = append(tail->query_start);
    tail_ctx = append(tail->context_lens);
    tail_tables = append(tail->block_tables);
  }
  grow(ws_.ints, int64_t(host_ints_.size()), ws_generation_);
  check_cuda(cudaMemcpyAsync(ws_.ints.data(), host_ints_.data(), host_ints_.size() * 4,
                             cudaMemcpyHostToDevice, stream_),
             "batch upload");
  check_cuda(cudaMemcpyAsync(ws_.slots.data(), b.slot_mapping.data(), b.slot_mapping.size() * 8,
                             cudaMemcpyHostToDevice, stream_),
             "batch upload");
  const int32_t* base = ws_.ints.data();
  BatchView view{base + ids,    base + pos,    base + qs,       base + ctx,
                 base + tables, base + logits, ws_.slots.data()};
  if (tail) {
    view.tail_query_start = base + tail_qs;
    view.tail_context_lens = base + tail_ctx;
    view.tail_block_tables = base + tail_tables;
  }
  return view;
}

void CudaModel::enqueue_step(const ForwardBatch& batch) {
  TANDEM_CHECK(kv_shape_.num_blocks > 0, "forward: the KV cache is not allocated");
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");  // the engine thread's first call
  validate_forward_batch(batch, config_, kv_shape_);
  check_cuda(cudaEventRecord(step_start_, stream_), "event record");
  if (execution_ == ExecutionMode::kGraphs && graph_eligible(batch)) {
    forward_graph(batch);
    return;
  }
  int32_t max_context_len = 0;
  for (int32_t len : batch.context_lens) max_context_len = std::max(max_context_len, len);
  enqueue_eager(batch, max_context_len);
}

void CudaModel::enqueue_eager(const ForwardBatch& batch, int32_t max_context_len) {
  ensure_workspace(batch.num_tokens(), int64_t(batch.logits_indices.size()));
  const std::optional<ForwardBatch> tail = sampled_rows_batch(batch);
  const ForwardBatch* t = tail ? &*tail : nullptr;
  enqueue_forward(batch, upload_batch(batch, t), max_context_len, t);
}

void CudaModel::forward(const ForwardBatch& batch, float* logits) {
  enqueue_step(batch);
  const int64_t m = int64_t(batch.logits_indices.size());
  if (m > 0) {
    check_cuda(cudaMemcpyAsync(logits, ws_.logits.data(), size_t(m * config_.vocab_size) * 4,
                               cudaMemcpyDeviceToHost, stream_),
               "logits download");
  }
  check_cuda(cudaEventRecord(step_end_, stream_), "event record");
  check_cuda(cudaStreamSynchronize(stream_), "forward");
  count_device_time();
}

void CudaModel::count_device_time() {
  float ms = 0.0f;
  check_cuda(cudaEventElapsedTime(&ms, step_start_, step_end_), "event elapsed time");
  device_seconds_ += double(ms) / 1e3;
}

// The draws go up as (m) TokenDraws and the picks come back as (3, m) int32s; of the logits, only
// the host sampler's rows cross, one copy per run of consecutive rows.
void CudaModel::forward_sampled(const ForwardBatch& batch, std::span<const DeviceDraw> draws,
                                std::span<const int32_t> host_rows, float* logits,
                                DevicePicks& picks) {
  const int64_t m = int64_t(batch.logits_indices.size()), vocab = config_.vocab_size;
  TANDEM_CHECK(int64_t(draws.size()) == m, "forward_sampled: {} draws for {} logits rows",
               draws.size(), m);
  for (size_t i = 0; i < host_rows.size(); ++i) {
    TANDEM_CHECK(
        host_rows[i] >= 0 && host_rows[i] < m && (i == 0 || host_rows[i] > host_rows[i - 1]),
        "forward_sampled: host row {} is not ascending within the {} logits rows", host_rows[i], m);
  }
  enqueue_step(batch);
  picks.ids.resize(size_t(m));
  picks.logprobs.resize(size_t(m));
  picks.invalid.resize(size_t(m));
  if (m > 0) {
    host_draws_.resize(size_t(m));
    for (int64_t r = 0; r < m; ++r) {
      const DeviceDraw& d = draws[size_t(r)];
      host_draws_[size_t(r)] = {d.u, d.temperature, d.top_p, d.min_p, d.top_k};
    }
    check_cuda(
        cudaMemcpyAsync(ws_.draws.data(), host_draws_.data(), size_t(m) * sizeof(cuda::TokenDraw),
                        cudaMemcpyHostToDevice, stream_),
        "draws upload");
    int32_t* out = ws_.picks.data();
    check_cuda(cuda::sample_tokens(ws_.logits.data(), m, vocab, ws_.draws.data(), out,
                                   reinterpret_cast<float*>(out + m), out + 2 * m, stream_),
               "sample_tokens");
    host_picks_.resize(size_t(3 * m));
    check_cuda(cudaMemcpyAsync(host_picks_.data(), out, size_t(3 * m) * 4, cudaMemcpyDeviceToHost,
                               stream_),
               "picks download");
  }
  for (size_t i = 0; i < host_rows.size();) {
    size_t end = i + 1;
    while (end < host_rows.size() && host_rows[end] == host_rows[end - 1] + 1) ++end;
    check_cuda(cudaMemcpyAsync(logits + int64_t(i) * vocab,
                               ws_.logits.data() + int64_t(host_rows[i]) * vocab,
                               (end - i) * size_t(vocab) * 4, cudaMemcpyDeviceToHost, stream_),
               "logits download");
    i = end;
  }
  check_cuda(cudaEventRecord(step_end_, stream_), "event record");
  check_cuda(cudaStreamSynchronize(stream_), "forward");
  count_device_time();
  std::copy_n(host_picks_.begin(), m, picks.ids.begin());
  std::memcpy(picks.logprobs.data(), host_picks_.data() + m, size_t(m) * 4);
  std::copy_n(host_picks_.begin() + 2 * m, m, picks.invalid.begin());
}

void CudaModel::enqueue_forward(const ForwardBatch& batch, const BatchView& view,
                                int32_t max_context_len, const ForwardBatch* tail) {
  const ModelConfig& c = config_;
  const int64_t n = batch.num_tokens(), m = int64_t(batch.logits_indices.size());
  check_cuda(cuda::embedding(embed_.data(), c.vocab_size, c.hidden_size, view.token_ids, n,
                             ws_.hidden.data(), stream_),
             "embedding");
  FinishedRows all;
  all.residual = ws_.hidden.data();
  all.q = ws_.qkv.data();
  all.q_stride = int64_t(c.num_heads) * c.head_dim + 2 * int64_t(c.num_kv_heads) * c.head_dim;
  all.n = n;
  all.num_seqs = batch.num_seqs();
  for (int32_t s = 0; s < batch.num_seqs(); ++s) {
    all.max_query_len = std::max(all.max_query_len,
                                 batch.query_start[size_t(s) + 1] - batch.query_start[size_t(s)]);
  }
  all.max_context_len = max_context_len;
  all.max_blocks_per_seq = batch.max_blocks_per_seq;
  all.query_start = view.query_start;
  all.context_lens = view.context_lens;
  all.block_tables = view.block_tables;
  const int last = c.num_layers - 1;
  for (int layer = 0; layer < last; ++layer) {
    project_and_store(layer, n, view);
    finish_layer(layer, all);
  }
  if (tail) {
    last_layer_for_sampled_rows(batch, view, *tail, max_context_len);
  } else {
    project_and_store(last, n, view);
    finish_layer(last, all);
  }
  if (m == 0) return;
  // After a tail, the sampled rows are rows 0..m-1 of ws_.tail_hidden (and of ws_.proj).
  const cuda::DeviceBuffer<bf16>& head = c.tie_word_embeddings ? embed_ : lm_head_;
  check_cuda(cuda::rms_norm({tail ? ws_.tail_hidden.data() : ws_.hidden.data(), ws_.proj.data(),
                             tail ? nullptr : view.logits_indices, final_norm_.data(),
                             ws_.last.data(), m, c.hidden_size, c.rms_norm_eps},
                            stream_),
             "final norm");
  check_cublas(cuda::gemm(cublas_, {ws_.last.data(), head.data(), ws_.logits.data(),
                                    cuda::GemmOut::kF32, m, c.vocab_size, c.hidden_size, 0.0f}),
               "lm_head");
}

// Every row's K/V goes into the cache; then the sampled rows' residual and query rows are
// gathered to the front of buffers of their own and only they go on, each a one-token query over
// its sequence's context (so a decode-shaped attention launch).
void CudaModel::last_layer_for_sampled_rows(const ForwardBatch& batch, const BatchView& view,
                                            const ForwardBatch& tail, int32_t max_context_len) {
  const ModelConfig& c = config_;
  const int last = c.num_layers - 1;
  const int64_t n = batch.num_tokens(), m = tail.num_tokens();
  project_and_store(last, n, view);
  if (m == 0) return;
  const int64_t q_dim = int64_t(c.num_heads) * c.head_dim;
  const int64_t qkv_dim = q_dim + 2 * int64_t(c.num_kv_heads) * c.head_dim;
  check_cuda(cuda::gather_rows({ws_.qkv.data(), qkv_dim * 2, ws_.tail_q.data(), q_dim * 2,
                                q_dim * 2, view.logits_indices, m},
                               stream_),
             "gather queries");
  // The last layer's input norm has already added the previous layer's output into ws_.hidden.
  const int64_t row_bytes = int64_t(c.hidden_size) * 4;
  check_cuda(cuda::gather_rows({ws_.hidden.data(), row_bytes, ws_.tail_hidden.data(), row_bytes,
                                row_bytes, view.logits_indices, m},
                               stream_),
             "gather residual rows");
  FinishedRows rows;
  rows.residual = ws_.tail_hidden.data();
  rows.q = ws_.tail_q.data();
  rows.q_stride = q_dim;
  rows.n = m;
  rows.num_seqs = tail.num_seqs();
  rows.max_query_len = 1;
  rows.max_context_len = max_context_len;
  rows.max_blocks_per_seq = tail.max_blocks_per_seq;
  rows.query_start = view.tail_query_start;
  rows.context_lens = view.tail_context_lens;
  rows.block_tables = view.tail_block_tables;
  finish_layer(last, rows);
}

// A pure decode step: one new token per sequence, each sampled, rows in sequence order.
bool CudaModel::graph_eligible(const ForwardBatch& b) const {
  const int32_t seqs = b.num_seqs();
  if (seqs > kMaxGraphBatch || b.num_tokens() != seqs || int64_t(b.logits_indices.size()) != seqs) {
    return false;
  }
  for (int32_t s = 0; s < seqs; ++s) {
    if (b.logits_indices[size_t(s)] != s) return false;
  }
  return true;
}

// Pads the step to (batch bucket) sequences whose block tables hold (blocks bucket) entries;
// padding rows read and write only the scratch block past the cache's last. Captures the graph
// for that shape on first use (or after a workspace buffer moved), then replays it.
void CudaModel::forward_graph(const ForwardBatch& b) {
  const int32_t seqs = b.num_seqs(), bucket = graph_batch_bucket(seqs);
  int32_t blocks = kMinGraphBlocks;
  while (blocks < b.max_blocks_per_seq) blocks *= 2;
  const int32_t scratch = int32_t(kv_shape_.num_blocks), bs = kv_shape_.block_size;
  ForwardBatch p;
  p.token_ids = b.token_ids;
  p.positions = b.positions;
  p.slot_mapping = b.slot_mapping;
  p.context_lens = b.context_lens;
  p.max_blocks_per_seq = blocks;
  p.block_tables.assign(size_t(bucket) * size_t(blocks), scratch);
  for (int32_t s = 0; s < seqs; ++s) {
    std::copy_n(b.block_tables.begin() + int64_t(s) * b.max_blocks_per_seq, b.max_blocks_per_seq,
                p.block_tables.begin() + int64_t(s) * blocks);
  }
  for (int32_t s = seqs; s < bucket; ++s) {
    p.token_ids.push_back(0);
    p.positions.push_back(0);
    p.slot_mapping.push_back(int64_t(scratch) * bs);
    p.context_lens.push_back(1);
  }
  for (int32_t s = 0; s <= bucket; ++s) p.query_start.push_back(s);
  for (int32_t s = 0; s < bucket; ++s) p.logits_indices.push_back(s);

  ensure_workspace(bucket, bucket);
  const BatchView view = upload_batch(p);
  DecodeGraph& g = graphs_[{bucket, blocks}];
  if (g.exec && g.generation != ws_generation_) {
    cudaGraphExecDestroy(g.exec);
    g.exec = nullptr;
  }
  if (!g.exec) {
    cudaGraph_t graph = nullptr;
    check_cuda(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "graph capture");
    try {
      enqueue_forward(p, view, blocks * bs);
    } catch (...) {
      cudaStreamEndCapture(stream_, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    check_cuda(cudaStreamEndCapture(stream_, &graph), "graph capture");
    const cudaError_t e = cudaGraphInstantiate(&g.exec, graph, 0);
    cudaGraphDestroy(graph);
    check_cuda(e, "graph instantiate");
    g.generation = ws_generation_;
  }
  check_cuda(cudaGraphLaunch(g.exec, stream_), "graph launch");
}

void CudaModel::clear_graphs() {
  for (auto& [key, g] : graphs_) {
    if (g.exec) cudaGraphExecDestroy(g.exec);
  }
  graphs_.clear();
}

void CudaModel::project_and_store(int layer, int64_t n, const BatchView& view) {
  const ModelConfig& c = config_;
  Layer& l = layers_[size_t(layer)];
  const int64_t q_dim = int64_t(c.num_heads) * c.head_dim;
  const int64_t qkv_dim = q_dim + 2 * int64_t(c.num_kv_heads) * c.head_dim;
  const bf16* previous_mlp = layer > 0 ? ws_.proj.data() : nullptr;
  check_cuda(cuda::rms_norm({ws_.hidden.data(), previous_mlp, nullptr, l.input_norm.data(),
                             ws_.normed.data(), n, c.hidden_size, c.rms_norm_eps},
                            stream_),
             "input norm");
  project(ws_.normed.data(), l.qkv.data(), ws_.qkv.data(), n, qkv_dim, c.hidden_size, false,
          "qkv_proj");
  cuda::RopeStoreKvParams r;
  r.qkv = ws_.qkv.data();
  r.qkv_stride = qkv_dim;
  r.bias = l.qkv_bias.size() ? l.qkv_bias.data() : nullptr;
  r.positions = view.positions;
  r.slot_mapping = view.slots;
  r.inv_freq = inv_freq_.data();
  r.k_cache = k_cache_[size_t(layer)].data();
  r.v_cache = v_cache_[size_t(layer)].data();
  r.num_slots = kv_shape_.num_slots() + kv_shape_.block_size;  // + the padding scratch block
  r.n = n;
  r.num_heads = c.num_heads;
  r.num_kv_heads = c.num_kv_heads;
  r.head_dim = c.head_dim;
  check_cuda(cuda::rope_store_kv(r, stream_), "rope_store_kv");
}

void CudaModel::finish_layer(int layer, const FinishedRows& rows) {
  const ModelConfig& c = config_;
  Layer& l = layers_[size_t(layer)];
  const int64_t n = rows.n;
  const int64_t q_dim = int64_t(c.num_heads) * c.head_dim;
  cuda::PagedAttentionParams a;
  a.q = rows.q;
  a.q_stride = rows.q_stride;
  a.k_cache = k_cache_[size_t(layer)].data();
  a.v_cache = v_cache_[size_t(layer)].data();
  a.out = ws_.attn.data();
  a.query_start = rows.query_start;
  a.context_lens = rows.context_lens;
  a.block_tables = rows.block_tables;
  a.max_blocks_per_seq = rows.max_blocks_per_seq;
  a.num_seqs = rows.num_seqs;
  a.num_tokens = int32_t(n);
  a.max_query_len = rows.max_query_len;
  a.max_context_len = rows.max_context_len;
  a.num_heads = c.num_heads;
  a.num_kv_heads = c.num_kv_heads;
  a.head_dim = c.head_dim;
  a.block_size = kv_shape_.block_size;
  a.num_cache_slots = kv_shape_.num_slots() + kv_shape_.block_size;  // + the padding scratch block
  a.scale = float(1.0 / std::sqrt(double(c.head_dim)));
  a.split_kv_splits_per_block = split_kv_splits_per_block_;
  a.workspace = ws_.attn_ws.data();
  a.workspace_bytes = ws_.attn_ws.size() * sizeof(float);
  check_cuda(cuda::paged_attention(a, stream_), "paged_attention");
  project(ws_.attn.data(), l.o.data(), ws_.proj.data(), n, c.hidden_size, q_dim, false, "o_proj");

  check_cuda(cuda::rms_norm({rows.residual, ws_.proj.data(), nullptr, l.post_norm.data(),
                             ws_.normed.data(), n, c.hidden_size, c.rms_norm_eps},
                            stream_),
             "post-attention norm");
  project(ws_.normed.data(), l.gate_up.data(), ws_.act.data(), n, 2 * int64_t(c.intermediate_size),
          c.hidden_size, true, "gate_up_proj + silu_mul");
  project(ws_.act.data(), l.down.data(), ws_.proj.data(), n, c.hidden_size, c.intermediate_size,
          false, "down_proj");
}

void CudaModel::project(const bf16* x, const bf16* w, bf16* y, int64_t m, int64_t n, int64_t k,
                        bool silu_mul, const char* what) {
  const cuda::FewRowsGemmParams few{x, w, y, m, n, k, silu_mul};
  if (cuda::few_rows_gemm_enabled() && cuda::few_rows_gemm_supported(few)) {
    check_cuda(cuda::few_rows_gemm(few, stream_), what);
    return;
  }
  bf16* out = silu_mul ? ws_.gate_up.data() : y;
  check_cublas(cuda::gemm(cublas_, {x, w, out, cuda::GemmOut::kBF16, m, n, k, 0.0f}), what);
  if (silu_mul) check_cuda(cuda::silu_mul(out, m, n / 2, y, stream_), what);
}

}  // namespace tandem
