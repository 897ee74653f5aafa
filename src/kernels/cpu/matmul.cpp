// matmul: weight rows are consumed in panels of kPanelRows, dotted with a block of up to
// kRowBlock input rows. For many input rows a panel is converted to f32 once and reused; for few
// (decode) the AVX2 kernel reads f16/bf16 in place and converts in registers, keeping decode
// memory-bound. Two micro-kernel families compute the same sums: a portable one the compiler
// vectorizes, and AVX2/FMA (3 input x 4 weight rows of 8-lane accumulators) picked at run time.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <vector>

#include "core/thread_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define TANDEM_MATMUL_X86 1
#endif

namespace tandem::cpu {
namespace {

constexpr int64_t kPanelRows = 4;       // weight rows converted and consumed together
constexpr int64_t kRowBlock = 64;       // input rows that reuse one converted panel
constexpr int64_t kLanes = 8;           // f32 lanes per accumulator
constexpr int64_t kMaxInPlaceRows = 8;  // up to this many input rows, f16/bf16 are read in place
// Below this a thread hop costs more than it saves.
constexpr int64_t kMinMatmulMacsPerTask = 1 << 16;

// Where one panel's results go: y rows of stride `ldy`, starting at column col0.
struct PanelOut {
  float* y;  // (rows, ldy) at column col0
  int64_t ldy;
  int64_t cols;       // valid columns (<= kPanelRows)
  const float* bias;  // (cols) or null
};

void store_panel(const float sums[kPanelRows], const PanelOut& out, int64_t row) {
  float* dst = out.y + row * out.ldy;
  for (int64_t j = 0; j < out.cols; ++j) dst[j] = sums[j] + (out.bias ? out.bias[j] : 0.0f);
}

// --- portable path -------------------------------------------------------------------------

// Rows [row0, row0 + rows) of W as f32 into panel (kPanelRows, in), zero rows past `rows`.
void convert_panel_generic(const MatmulWeight& w, int64_t row0, int64_t rows, float* panel) {
  const int64_t in = w.in_features;
  const auto* src = static_cast<const uint8_t*>(w.data) + row0 * in * int64_t(dtype_size(w.dtype));
  convert_to_f32(w.dtype, src, panel, size_t(rows * in));
  std::fill(panel + rows * in, panel + kPanelRows * in, 0.0f);
}

// out[j] = x . panel_j for the 4 panel rows (lane-wise accumulators, so -O3 vectorizes it).
void dot_panel_generic(const float* x, int64_t in, const float* panel, float out[kPanelRows]) {
  float acc[kPanelRows][kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= in; k += kLanes) {
    for (int64_t j = 0; j < kPanelRows; ++j) {
      const float* p = panel + j * in + k;
      for (int64_t l = 0; l < kLanes; ++l) acc[j][l] += x[k + l] * p[l];
    }
  }
  for (int64_t j = 0; j < kPanelRows; ++j) {
    float s = 0.0f;
    for (int64_t l = 0; l < kLanes; ++l) s += acc[j][l];
    for (int64_t t = k; t < in; ++t) s += x[t] * panel[j * in + t];
    out[j] = s;
  }
}

void panel_rows_generic(const float* x, int64_t rows, int64_t in, const void* panel,
                        const PanelOut& out) {
  for (int64_t r = 0; r < rows; ++r) {
    float sums[kPanelRows];
    dot_panel_generic(x + r * in, in, static_cast<const float*>(panel), sums);
    store_panel(sums, out, r);
  }
}

// --- AVX2 path -----------------------------------------------------------------------------
#ifdef TANDEM_MATMUL_X86

#define TANDEM_AVX2 __attribute__((target("avx2,fma,f16c")))

TANDEM_AVX2 void convert_panel_avx2(const MatmulWeight& w, int64_t row0, int64_t rows,
                                    float* panel) {
  const int64_t in = w.in_features, n = rows * in;
  if (w.dtype == DType::kF32) return convert_panel_generic(w, row0, rows, panel);
  const auto* src = static_cast<const uint16_t*>(w.data) + row0 * in;
  int64_t k = 0;
  if (w.dtype == DType::kBF16) {
    for (; k + 8 <= n; k += 8) {
      __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k));
      __m256i f = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
      _mm256_storeu_ps(panel + k, _mm256_castsi256_ps(f));
    }
    for (; k < n; ++k) panel[k] = bf16_to_f32(src[k]);
  } else {
    for (; k + 8 <= n; k += 8) {
      __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k));
      _mm256_storeu_ps(panel + k, _mm256_cvtph_ps(h));
    }
    for (; k < n; ++k) panel[k] = f16_to_f32(src[k]);
  }
  std::fill(panel + n, panel + kPanelRows * in, 0.0f);
}

TANDEM_AVX2 inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 8 consecutive weights of dtype D at w[k] as f32 lanes.
template <DType D>
TANDEM_AVX2 inline __m256 load8_avx2(const void* w, int64_t k) {
  if constexpr (D == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(w) + k);
  } else {
    const auto* p = reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + k);
    if constexpr (D == DType::kF16) return _mm256_cvtph_ps(_mm_loadu_si128(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(p)), 16));
  }
}

template <DType D>
inline float load1(const void* w, int64_t k) {
  if constexpr (D == DType::kF32) return static_cast<const float*>(w)[k];
  const uint16_t h = static_cast<const uint16_t*>(w)[k];
  return D == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

// sums[r][j] = x_r . w_j for R input rows (stride `in`) and 4 weight rows of dtype D (stride
// `in`), converting the weights in registers.
template <int R, DType D>
TANDEM_AVX2 void dot_panel_avx2(const float* x, int64_t in, const void* w,
                                float sums[][kPanelRows]) {
  __m256 acc[R][kPanelRows];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < kPanelRows; ++j) acc[r][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + kLanes <= in; k += kLanes) {
    __m256 w0 = load8_avx2<D>(w, k), w1 = load8_avx2<D>(w, in + k);
    __m256 w2 = load8_avx2<D>(w, 2 * in + k), w3 = load8_avx2<D>(w, 3 * in + k);
    for (int r = 0; r < R; ++r) {
      __m256 xv = _mm256_loadu_ps(x + r * in + k);
      acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
      acc[r][2] = _mm256_fmadd_ps(xv, w2, acc[r][2]);
      acc[r][3] = _mm256_fmadd_ps(xv, w3, acc[r][3]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < kPanelRows; ++j) {
      float s = hsum_avx2(acc[r][j]);
      for (int64_t t = k; t < in; ++t) s += x[r * in + t] * load1<D>(w, j * in + t);
      sums[r][j] = s;
    }
  }
}

template <DType D>
TANDEM_AVX2 void panel_rows_avx2(const float* x, int64_t rows, int64_t in, const void* w,
                                 const PanelOut& out) {
  constexpr int kTile = 3;
  float sums[kTile][kPanelRows];
  int64_t r = 0;
  for (; r + kTile <= rows; r += kTile) {
    dot_panel_avx2<kTile, D>(x + r * in, in, w, sums);
    for (int t = 0; t < kTile; ++t) store_panel(sums[t], out, r + t);
  }
  for (; r < rows; ++r) {
    dot_panel_avx2<1, D>(x + r * in, in, w, sums);
    store_panel(sums[0], out, r);
  }
}

// F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not know "f16c".
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

bool cpu_has_avx2() {
  static const bool has =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
  return has;
}
#else
bool cpu_has_avx2() { return false; }
#endif

// --- driver --------------------------------------------------------------------------------

// Per code path: the panel converter, and per weight dtype a kernel reading that dtype in place
// (null: convert the panel to f32 first). Indexed by DType's value.
using PanelRowsFn = void (*)(const float*, int64_t, int64_t, const void*, const PanelOut&);
struct Kernels {
  void (*convert)(const MatmulWeight&, int64_t, int64_t, float*);
  PanelRowsFn native[3];
};

Kernels pick_kernels(MatmulIsa isa) {
#ifdef TANDEM_MATMUL_X86
  if (isa == MatmulIsa::kAuto && cpu_has_avx2()) {
    return {convert_panel_avx2,
            {panel_rows_avx2<DType::kF32>, panel_rows_avx2<DType::kF16>,
             panel_rows_avx2<DType::kBF16>}};
  }
#endif
  (void)isa;
  return {convert_panel_generic, {panel_rows_generic, nullptr, nullptr}};
}

// Runs panel p (weight rows [p * 4, p * 4 + 4)) against a block of `rows` input rows: in place
// when the kernel reads the dtype natively and converting would not pay off (few input rows),
// else through `buf` (kPanelRows, in) as f32.
void run_panel(const MatmulWeight& w, const Kernels& k, int64_t p, const float* x, int64_t rows,
               int64_t n, const PanelOut& out, float* buf) {
  const int64_t row0 = p * kPanelRows, in = w.in_features;
  const int64_t panel_rows = std::min(kPanelRows, w.out_features - row0);
  const PanelRowsFn native = k.native[int(w.dtype)];
  if (panel_rows == kPanelRows && native && (w.dtype == DType::kF32 || n <= kMaxInPlaceRows)) {
    const auto* src =
        static_cast<const uint8_t*>(w.data) + row0 * in * int64_t(dtype_size(w.dtype));
    return native(x, rows, in, src, out);
  }
  k.convert(w, row0, panel_rows, buf);
  k.native[int(DType::kF32)](x, rows, in, buf, out);
}

}  // namespace

void matmul(const float* x, int64_t n, const MatmulWeight& w, float* y, ThreadPool* pool,
            MatmulIsa isa) {
  const int64_t in = w.in_features, out = w.out_features;
  if (n <= 0 || out <= 0) return;
  const Kernels kernels = pick_kernels(isa);
  const int64_t panels = (out + kPanelRows - 1) / kPanelRows;
  auto work = [&](size_t p_begin, size_t p_end) {
    thread_local std::vector<float> buf;  // (kPanelRows, in) converted weight rows
    if (buf.size() < size_t(kPanelRows * in)) buf.resize(size_t(kPanelRows * in));
    for (int64_t r0 = 0; r0 < n; r0 += kRowBlock) {
      const int64_t rows = std::min(kRowBlock, n - r0);
      for (int64_t p = int64_t(p_begin); p < int64_t(p_end); ++p) {
        const int64_t col0 = p * kPanelRows;
        PanelOut dst{y + r0 * out + col0, out, std::min(kPanelRows, out - col0),
                     w.bias ? w.bias + col0 : nullptr};
        run_panel(w, kernels, p, x + r0 * in, rows, n, dst, buf.data());
      }
    }
  };
  const int64_t macs_per_panel = std::max<int64_t>(1, kPanelRows * in * n);
  const size_t grain = size_t(std::max<int64_t>(1, kMinMatmulMacsPerTask / macs_per_panel));
  if (pool) {
    pool->parallel_for(size_t(panels), work, grain);
  } else {
    work(0, size_t(panels));
  }
}

const char* matmul_isa_name() { return cpu_has_avx2() ? "avx2" : "generic"; }

}  // namespace tandem::cpu
