// Sampler: the per-row pipeline (check, penalties, min_tokens mask, temperature, top-k, top-p,
// min-p, draw), raw-logit logprobs, and the batch loop. Every stage is O(vocab) or better:
// top-k keeps a k-heap, top-p finds its cut with a weight histogram and mass-guided selection,
// and a vectorizable exp() runs once per candidate. Ranking uses (value desc, id asc), a total
// order, so kept sets are well defined.
#include "engine/sampler.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace tandem {

struct Sampler::Workspace {
  std::vector<float> values;        // [vocab] processed logits of the current row
  std::vector<float> weights;       // [vocab] exp(value - max candidate value), for candidates
  std::vector<int32_t> candidates;  // [<= vocab] token ids still in the running
  std::vector<double> histogram;    // [4 lanes][2033 buckets] top-p mass by weight bits
  double total_weight = 0.0;        // sum of weights over candidates
};

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
// top-p sorts the last few candidates around its cut instead of selecting further.
constexpr size_t kTopPSortBelow = 32;

uint64_t global_random_seed() {
  static std::mutex mutex;
  static std::mt19937_64 source = [] {
    std::random_device device;
    return std::mt19937_64((uint64_t(device()) << 32) ^ device());
  }();
  std::lock_guard lock(mutex);
  return source();
}

// A uniform double in [0, 1) from the top 53 bits (portable, unlike uniform_real_distribution).
double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

// A monotone map of non-NaN floats to int32 (a < b iff key(a) < key(b)), and back: lets the
// clamps and selects below be integer ops, which vectorize (float selects don't, as they
// might trap).
constexpr int32_t order_key(float x) {
  int32_t bits = std::bit_cast<int32_t>(x);
  return bits ^ ((bits >> 31) & 0x7FFFFFFF);
}
constexpr float from_order_key(int32_t key) {
  return std::bit_cast<float>(key ^ ((key >> 31) & 0x7FFFFFFF));
}

// exp(x) for x <= 88 to within 1e-7 relative, and 0 for x < -87 (also -inf): Cephes' expf,
// branch-free so that loops over it vectorize (std::exp does not).
inline float exp_approx(float x) {
  constexpr int32_t kLow = order_key(-87.0f), kHigh = order_key(88.0f);
  constexpr float kLog2e = 1.44269504088896341f, kRound = 12582912.0f;  // 1.5 * 2^23
  int32_t key = order_key(x);
  int32_t clamped = key < kLow ? kLow : key;
  clamped = clamped > kHigh ? kHigh : clamped;
  float xc = from_order_key(clamped);
  float n = (xc * kLog2e + kRound) - kRound;  // round to nearest
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;  // r = xc - n * ln2, ln2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  int32_t scale_bits = ((int32_t(n) + 127) << 23) & -int32_t(key >= kLow);  // 2^n, or 0
  return y * std::bit_cast<float>(scale_bits);
}

// out[i] = exp(in[i] - shift) for i in [0, n).
void exp_shifted(const float* in, float shift, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = exp_approx(in[i] - shift);
}

// The sum of x[0, n) in double, with independent accumulators (no serial add chain).
double sum_of(const float* x, size_t n) {
  double acc[4] = {0.0, 0.0, 0.0, 0.0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (size_t j = 0; j < 4; ++j) acc[j] += x[i + j];
  }
  for (; i < n; ++i) acc[0] += x[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// "a ranks before b": higher value first, lower id first among equal values.
struct ByValueDesc {
  const float* values;
  bool operator()(int32_t a, int32_t b) const {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  }
};

// Copies logits into `values` ([vocab]); throws for an empty row, NaN or +inf.
void copy_checked(std::span<const float> logits, std::vector<float>& values) {
  TANDEM_CHECK(!logits.empty(), "sampler: the logits row is empty");
  values.assign(logits.begin(), logits.end());
  uint32_t bad = 0;
  for (float x : logits) {
    uint32_t bits = std::bit_cast<uint32_t>(x);
    bad |= uint32_t((bits & 0x7FFFFFFF) > 0x7F800000) | uint32_t(bits == 0x7F800000);
  }
  if (!bad) return;
  for (size_t i = 0; i < logits.size(); ++i) {
    TANDEM_CHECK(logits[i] < kInf, "sampler: logit of token {} is {} (NaN or +inf)", i, logits[i]);
  }
}

// The largest order_key of values (no NaN), with -0 counted as +0 (x + 0 turns -0 into +0).
int32_t max_key(std::span<const float> values) {
  int32_t best = std::numeric_limits<int32_t>::min();
  for (float x : values) {
    int32_t key = order_key(x + 0.0f);
    best = key > best ? key : best;
  }
  return best;
}

// The lowest id among the largest values, like argmax (values have no NaN).
int32_t argmax(std::span<const float> values) {
  int32_t best = max_key(values);
  size_t i = 0;
  while (order_key(values[i] + 0.0f) != best) ++i;
  return int32_t(i);
}

// The k best ids of values[0, n) by ByValueDesc, best first; one pass with a k-heap.
std::vector<int32_t> top_ids(const float* values, size_t n, size_t k) {
  k = std::min(k, n);
  std::vector<int32_t> heap;  // a heap whose front is the worst of the best k so far
  heap.reserve(k + 1);
  ByValueDesc better{values};
  for (size_t i = 0; i < n && k > 0; ++i) {
    int32_t id = int32_t(i);
    if (heap.size() == k && !better(id, heap.front())) continue;
    heap.push_back(id);
    std::push_heap(heap.begin(), heap.end(), better);
    if (heap.size() > k) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.pop_back();
    }
  }
  std::sort(heap.begin(), heap.end(), better);
  return heap;
}

// Log-softmax of the raw logits at `token`, its rank, and the `num_top` most likely tokens.
// scratch: [vocab] floats.
SampleLogprobs raw_logprobs(std::span<const float> raw, int32_t token, int num_top,
                            std::vector<float>& scratch) {
  float max = raw[argmax(raw)];
  scratch.resize(raw.size());
  exp_shifted(raw.data(), max, scratch.data(), raw.size());
  double log_z = double(max) + std::log(sum_of(scratch.data(), raw.size()));
  float token_logit = raw[token];
  int32_t higher = 0;
  int32_t token_key = order_key(token_logit + 0.0f);
  for (float x : raw) higher += order_key(x + 0.0f) > token_key;
  SampleLogprobs out;
  out.logprob = float(token_logit - log_z);
  out.rank = 1 + higher;
  for (int32_t id : top_ids(raw.data(), raw.size(), size_t(num_top))) {
    out.top.push_back({id, float(raw[id] - log_z)});
  }
  return out;
}

// Candidates for top-k: the k best ids plus any tied with the k-th (like vLLM's
// `logits < kth value` mask), best first; all ids when top-k is off.
void init_candidates(const std::vector<float>& values, int top_k,
                     std::vector<int32_t>& candidates) {
  if (top_k <= 0 || size_t(top_k) >= values.size()) {
    candidates.resize(values.size());
    std::iota(candidates.begin(), candidates.end(), 0);
    return;
  }
  candidates = top_ids(values.data(), values.size(), size_t(top_k));
  int32_t last = candidates.back();  // among ties, the highest id kept so far
  for (size_t id = size_t(last) + 1; id < values.size(); ++id) {
    if (values[id] == values[last]) candidates.push_back(int32_t(id));
  }
}

// True when the candidates are every id of the vocab (in any order).
bool all_ids(const Sampler::Workspace& ws) { return ws.candidates.size() == ws.values.size(); }

double mass_of(const float* weights, const int32_t* begin, const int32_t* end) {
  double mass = 0.0;
  for (const int32_t* it = begin; it != end; ++it) mass += weights[*it];
  return mass;
}

double candidate_mass(const Sampler::Workspace& ws) {
  if (all_ids(ws)) return sum_of(ws.weights.data(), ws.weights.size());
  return mass_of(ws.weights.data(), ws.candidates.data(),
                 ws.candidates.data() + ws.candidates.size());
}

// Fills ws.weights for the candidates (exp of value - max, so the best has weight 1) and
// ws.total_weight.
void compute_weights(Sampler::Workspace& ws) {
  float max = -kInf;
  if (all_ids(ws)) {
    max = from_order_key(max_key(ws.values));
  } else {
    for (int32_t id : ws.candidates) max = std::max(max, ws.values[id]);
  }
  ws.weights.resize(ws.values.size());
  if (all_ids(ws)) {
    exp_shifted(ws.values.data(), max, ws.weights.data(), ws.values.size());
  } else {
    for (int32_t id : ws.candidates) ws.weights[id] = exp_approx(ws.values[id] - max);
  }
  ws.total_weight = candidate_mass(ws);
}

// Where top-p's cut falls: candidates [lo, hi) hold the ranks lo..hi-1, and mass_above is the
// mass of [0, lo).
struct CutRange {
  size_t lo = 0, hi = 0;
  double mass_above = 0.0;
};

// With every id a candidate: one histogram pass over the weights' top bits (exponent and 4
// mantissa bits: buckets 1/16 of an octave wide) finds the bucket where top-p's cut falls.
// The ids above it go first (kept), the bucket's ids next (to resolve), the ids below are
// dropped. Higher buckets hold higher weights, hence higher values: ranks are preserved.
CutRange bucket_top_p(Sampler::Workspace& ws, double target) {
  constexpr uint32_t kShift = 19, kBuckets = (0x3F800000u >> kShift) + 1;  // weights <= 1
  constexpr size_t kLanes = 4;  // separate histograms, so that adds to one bucket don't chain
  auto bucket = [&](int32_t id) {
    return std::min(std::bit_cast<uint32_t>(ws.weights[id]) >> kShift, kBuckets - 1);
  };
  ws.histogram.assign(kLanes * kBuckets, 0.0);  // [lane][bucket] mass
  for (size_t i = 0; i < ws.weights.size(); ++i) {
    ws.histogram[(i % kLanes) * kBuckets + bucket(int32_t(i))] += ws.weights[i];
  }
  double above = 0.0;
  for (uint32_t b = kBuckets; b-- > 0;) {
    double mass = 0.0;
    for (size_t lane = 0; lane < kLanes; ++lane) mass += ws.histogram[lane * kBuckets + b];
    if (above + mass < target) {
      above += mass;
      continue;
    }
    auto& cand = ws.candidates;
    auto mid = std::partition(cand.begin(), cand.end(), [&](int32_t id) { return bucket(id) > b; });
    auto end = std::partition(mid, cand.end(), [&](int32_t id) { return bucket(id) == b; });
    cand.erase(end, cand.end());
    return {size_t(mid - cand.begin()), cand.size(), above};
  }
  return {0, ws.candidates.size(), 0.0};  // target rounded above the total: no cut
}

// Keeps the smallest most-likely set whose mass reaches top_p of the candidates' mass: a token
// stays iff the mass ranked above it is < top_p (vLLM's rule). Over the whole vocab a weight
// histogram narrows the cut to one bucket first; then halving with nth_element (expected
// O(n)) narrows it further, and only the last few candidates around it are sorted.
void keep_top_p(Sampler::Workspace& ws, float top_p) {
  if (top_p >= 1.0f) return;
  const double target = double(top_p) * ws.total_weight;
  CutRange range{0, ws.candidates.size(), 0.0};
  if (all_ids(ws)) range = bucket_top_p(ws, target);
  std::vector<int32_t>& cand = ws.candidates;
  ByValueDesc better{ws.values.data()};
  size_t lo = range.lo, hi = range.hi;   // cand[lo, hi) holds the ranks lo..hi-1
  double mass_above = range.mass_above;  // mass of cand[0, lo)
  while (hi - lo > kTopPSortBelow) {
    size_t mid = lo + (hi - lo) / 2;
    std::nth_element(cand.begin() + lo, cand.begin() + mid, cand.begin() + hi, better);
    double mass = mass_of(ws.weights.data(), cand.data() + lo, cand.data() + mid);
    if (mass_above + mass >= target) {
      hi = mid;
    } else {
      mass_above += mass;
      lo = mid;
    }
  }
  std::sort(cand.begin() + lo, cand.begin() + hi, better);
  size_t cut = lo;
  while (cut < hi && mass_above < target) mass_above += ws.weights[cand[cut++]];
  cand.resize(std::max<size_t>(cut, 1));
  ws.total_weight = candidate_mass(ws);
}

// Keeps the ids whose probability is >= min_p times the largest (weights are p / p_max).
void keep_min_p(Sampler::Workspace& ws, float min_p) {
  if (min_p <= 0.0f) return;
  std::erase_if(ws.candidates, [&](int32_t id) { return ws.weights[id] < min_p; });
  ws.total_weight = candidate_mass(ws);
}

// Copies `logits` into ws.values and leaves in ws.candidates (with ws.weights) the ids the
// draw chooses from: just the argmax when greedy.
void prepare_row(std::span<const float> logits, const SamplerState& state, Sampler::Workspace& ws) {
  copy_checked(logits, ws.values);
  std::span<float> values(ws.values);
  apply_penalties(values, state);
  apply_min_tokens_mask(values, state);
  int32_t best = argmax(values);
  TANDEM_CHECK(values[best] != -kInf, "sampler: every token of the vocab is masked");
  const SamplingParams& p = state.params();
  if (p.is_greedy()) {
    ws.candidates.assign(1, best);
  } else {
    for (float& x : values) x /= p.temperature;
    init_candidates(ws.values, p.top_k, ws.candidates);
  }
  compute_weights(ws);
  if (p.is_greedy()) return;
  keep_top_p(ws, p.top_p);
  keep_min_p(ws, p.min_p);
}

// The id at which the running sum of w[0..] first exceeds target, or -1; sums chunks of 64
// first so that the serial walk covers one chunk only.
int32_t walk_dense(const float* w, size_t n, double target) {
  constexpr size_t kChunk = 64;
  double cumulative = 0.0;
  size_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    double chunk = sum_of(w + i, kChunk);
    if (cumulative + chunk > target) break;
    cumulative += chunk;
  }
  for (; i < n; ++i) {
    cumulative += w[i];
    if (cumulative > target) return int32_t(i);
  }
  return -1;
}

// Draws one candidate with probability proportional to its weight. A sampled (not greedy) token
// takes one uniform number even when one candidate is left, as SamplerState::device_draw does:
// a seeded sequence's n-th token comes from its n-th number, whichever path sampled the others
// (a first token handed over from the prefiller skips exactly one).
int32_t draw(const Sampler::Workspace& ws, std::mt19937_64& rng, bool greedy) {
  if (greedy) return ws.candidates[0];
  double target = uniform01(rng) * ws.total_weight;
  if (ws.candidates.size() == 1) return ws.candidates[0];
  if (all_ids(ws)) {
    int32_t id = walk_dense(ws.weights.data(), ws.weights.size(), target);
    if (id >= 0) return id;
  } else {
    double cumulative = 0.0;
    for (int32_t id : ws.candidates) {
      cumulative += ws.weights[id];
      if (cumulative > target) return id;
    }
  }
  // target rounded up to the total: the worst-ranked candidate that has a weight
  ByValueDesc better{ws.values.data()};
  return *std::min_element(ws.candidates.begin(), ws.candidates.end(), [&](int32_t a, int32_t b) {
    return ws.weights[a] > 0.0f && (ws.weights[b] == 0.0f || better(b, a));
  });
}

SampleResult sample_row(std::span<const float> logits, SamplerState& state, Sampler::Workspace& ws,
                        std::mt19937_64& rng) {
  prepare_row(logits, state, ws);
  SampleResult result;
  result.token_id = draw(ws, rng, state.params().is_greedy());
  if (state.params().logprobs) {
    result.logprobs = raw_logprobs(logits, result.token_id, *state.params().logprobs, ws.weights);
  }
  state.append_output_token(result.token_id);
  return result;
}

}  // namespace

SamplerState::SamplerState(SamplingParams params, std::span<const int32_t> prompt_token_ids,
                           std::span<const int32_t> eos_token_ids)
    : params_(std::move(params)) {
  params_.validate();
  rng_.seed(params_.seed ? uint64_t(*params_.seed) : global_random_seed());
  if (params_.repetition_penalty != 1.0f) {
    for (int32_t id : prompt_token_ids) {
      TANDEM_CHECK(id >= 0, "sampler: prompt token id {} is negative", id);
      repetition_tokens_.insert(id);
    }
  }
  min_tokens_stop_ids_.assign(eos_token_ids.begin(), eos_token_ids.end());
  min_tokens_stop_ids_.insert(min_tokens_stop_ids_.end(), params_.stop_token_ids.begin(),
                              params_.stop_token_ids.end());
}

void SamplerState::append_output_token(int32_t token_id) {
  TANDEM_CHECK(token_id >= 0, "sampler: output token id {} is negative", token_id);
  ++num_output_tokens_;
  ++output_counts_[token_id];
  if (params_.repetition_penalty != 1.0f) repetition_tokens_.insert(token_id);
}

void SamplerState::append_handed_over_token(int32_t token_id) {
  if (!params_.is_greedy()) (void)uniform01(rng_);
  append_output_token(token_id);
}

std::optional<DeviceDraw> SamplerState::device_draw() {
  const SamplingParams& p = params_;
  const bool mask_in_force = num_output_tokens_ < p.min_tokens && !min_tokens_stop_ids_.empty();
  const bool shaped = p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f ||
                      p.presence_penalty != 0.0f || mask_in_force;
  // The device returns the picked token's logprob; its rank it knows for the argmax only.
  const bool needs_host_logprobs = p.logprobs && (*p.logprobs > 0 || !p.is_greedy());
  if (shaped || needs_host_logprobs) return std::nullopt;
  if (p.is_greedy()) return DeviceDraw{};
  return DeviceDraw{.temperature = p.temperature,
                    .top_k = p.top_k,
                    .top_p = p.top_p,
                    .min_p = p.min_p,
                    .u = uniform01(rng_)};
}

void apply_penalties(std::span<float> logits, const SamplerState& state) {
  const SamplingParams& p = state.params_;
  auto check = [&](int32_t id) {
    TANDEM_CHECK(size_t(id) < logits.size(),
                 "sampler: token id {} in the sequence is outside the vocab (size {})", id,
                 logits.size());
  };
  if (p.repetition_penalty != 1.0f) {
    for (int32_t id : state.repetition_tokens_) {
      check(id);
      float& x = logits[id];
      x = x > 0.0f ? x / p.repetition_penalty : x * p.repetition_penalty;
    }
  }
  if (p.frequency_penalty == 0.0f && p.presence_penalty == 0.0f) return;
  for (auto [id, count] : state.output_counts_) {
    check(id);
    logits[id] -= p.frequency_penalty * float(count);
    logits[id] -= p.presence_penalty;
  }
}

void apply_min_tokens_mask(std::span<float> logits, const SamplerState& state) {
  if (state.num_output_tokens_ >= state.params_.min_tokens) return;
  for (int32_t id : state.min_tokens_stop_ids_) {
    if (id >= 0 && size_t(id) < logits.size()) logits[id] = -kInf;  // others never occur
  }
}

Sampler::Sampler(ThreadPool* pool) : pool_(pool) {}
Sampler::~Sampler() = default;

std::unique_ptr<Sampler::Workspace> Sampler::acquire_workspace() {
  std::lock_guard lock(mutex_);
  if (free_workspaces_.empty()) return std::make_unique<Workspace>();
  auto workspace = std::move(free_workspaces_.back());
  free_workspaces_.pop_back();
  return workspace;
}

void Sampler::release_workspace(std::unique_ptr<Workspace> workspace) {
  std::lock_guard lock(mutex_);
  free_workspaces_.push_back(std::move(workspace));
}

SampleResult Sampler::sample(std::span<const float> logits, SamplerState& state) {
  auto ws = acquire_workspace();
  SampleResult result = sample_row(logits, state, *ws, state.rng_);
  release_workspace(std::move(ws));
  return result;
}

std::vector<SampleResult> Sampler::sample_batch(std::span<const float> logits, size_t vocab_size,
                                                std::span<SamplerState* const> states) {
  TANDEM_CHECK(vocab_size > 0 && logits.size() == states.size() * vocab_size,
               "sampler: batch logits have {} values, expected {} rows x vocab {}", logits.size(),
               states.size(), vocab_size);
  for (size_t i = 0; i < states.size(); ++i) {
    TANDEM_CHECK(states[i] != nullptr, "sampler: batch row {} has no sampler state", i);
  }
  std::vector<SampleResult> results(states.size());
  std::mutex error_mutex;
  std::exception_ptr error;  // the first failure; rethrown on the calling thread
  auto run_rows = [&](size_t begin, size_t end) {
    try {
      for (size_t i = begin; i < end; ++i) {
        results[i] = sample(logits.subspan(i * vocab_size, vocab_size), *states[i]);
      }
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  if (pool_) {
    pool_->parallel_for(states.size(), run_rows);
  } else {
    run_rows(0, states.size());
  }
  if (error) std::rethrow_exception(error);
  return results;
}

std::vector<TokenProb> Sampler::distribution(std::span<const float> logits,
                                             const SamplerState& state) {
  auto ws = acquire_workspace();
  prepare_row(logits, state, *ws);
  std::sort(ws->candidates.begin(), ws->candidates.end(), ByValueDesc{ws->values.data()});
  std::vector<TokenProb> out;
  for (int32_t id : ws->candidates) {
    if (ws->weights[id] > 0.0f) out.push_back({id, ws->weights[id] / ws->total_weight});
  }
  release_workspace(std::move(ws));
  return out;
}

}  // namespace tandem
