// RandomDataset: vLLM's RandomDataset.sample and gen_prompt_decode_to_target_len, in C++.
#include "bench/random_dataset.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "bench/seeded_rng.h"
#include "core/error.h"
#include "core/logging.h"

namespace tandem::bench {
namespace {

// Decode/re-encode rounds before a prompt's remaining mismatch is reported (vLLM stops at 10;
// more rounds make exact lengths the rule for tokenizers that merge across token boundaries).
constexpr int kMaxConvergeRounds = 64;

// Token ids a prompt may contain: the base vocabulary minus special and added tokens, and minus
// byte-fallback tokens (<0x80>...): a lone byte decodes to U+FFFD, which re-encodes as three
// byte tokens, so prompts holding them never reach their exact length.
std::vector<int> allowed_tokens(const Tokenizer& tokenizer) {
  std::set<int> excluded(tokenizer.special_ids().begin(), tokenizer.special_ids().end());
  excluded.insert(tokenizer.added_ids().begin(), tokenizer.added_ids().end());
  std::vector<int> allowed;
  for (int id = 0; id < tokenizer.vocab_size(); ++id) {
    const bool usable =
        !excluded.count(id) && tokenizer.id_to_token(id) && !tokenizer.is_byte_run_token(id);
    if (usable) allowed.push_back(id);
  }
  TANDEM_CHECK(!allowed.empty(), "random dataset: the tokenizer has no non-special tokens");
  return allowed;
}

// Tokens the server's tokenizer adds around a prompt (e.g. BOS), as
// tokenizer.num_special_tokens_to_add() in transformers.
int special_tokens_added(const Tokenizer& tokenizer) {
  return int(tokenizer.encode("", /*add_special_tokens=*/true).size() -
             tokenizer.encode("", /*add_special_tokens=*/false).size());
}

struct Converged {
  std::string text;
  int length = 0;
};

// Decodes `ids` and re-encodes the text, truncating or padding with random allowed tokens until
// the text encodes to exactly `target` tokens (or the rounds run out).
Converged converge_to_length(const Tokenizer& tokenizer, std::vector<int> ids, int target,
                             const std::vector<int>& allowed, SeededRng& rng) {
  for (int round = 0;; ++round) {
    std::string text = tokenizer.decode(ids);
    ids = tokenizer.encode(text, /*add_special_tokens=*/false);
    const int length = int(ids.size());
    if (length == target || round == kMaxConvergeRounds) return {std::move(text), length};
    if (length > target) {
      ids.resize(size_t(target));
    } else {
      for (int i = length; i < target; ++i) ids.push_back(allowed[rng.below(allowed.size())]);
    }
  }
}

}  // namespace

RandomDataset build_random_dataset(const Tokenizer& tokenizer, const RandomDatasetParams& p) {
  TANDEM_CHECK(p.num_prompts >= 1, "--num-prompts must be at least 1, got {}", p.num_prompts);
  TANDEM_CHECK(p.range_ratio >= 0.0 && p.range_ratio < 1.0,
               "--random-range-ratio must be in [0, 1), got {}", p.range_ratio);
  TANDEM_CHECK(p.prefix_len >= 0, "--random-prefix-len must be >= 0, got {}", p.prefix_len);
  TANDEM_CHECK(p.input_len >= 0, "--random-input-len must be >= 0, got {}", p.input_len);
  TANDEM_CHECK(p.output_len >= 1, "--random-output-len must be >= 1, got {}", p.output_len);

  const int num_special = special_tokens_added(tokenizer);
  const int real_input_len = std::max(0, p.input_len - num_special);
  const auto input_low = int64_t(std::floor(real_input_len * (1.0 - p.range_ratio)));
  const auto input_high = int64_t(std::ceil(real_input_len * (1.0 + p.range_ratio)));
  const auto output_low =
      std::max<int64_t>(1, int64_t(std::floor(p.output_len * (1.0 - p.range_ratio))));
  const auto output_high =
      std::max<int64_t>(1, int64_t(std::ceil(p.output_len * (1.0 + p.range_ratio))));
  TANDEM_CHECK(p.prefix_len + input_low >= 1,
               "--random-input-len {} is too small: with {} special token(s) added by the "
               "tokenizer, --random-range-ratio {} and --random-prefix-len {}, a prompt could "
               "have no tokens",
               p.input_len, num_special, p.range_ratio, p.prefix_len);

  SeededRng rng(p.seed);
  const std::vector<int> allowed = allowed_tokens(tokenizer);
  std::vector<int> prefix;
  for (int i = 0; i < p.prefix_len; ++i) prefix.push_back(allowed[rng.below(allowed.size())]);

  // Draw all lengths first, then the offsets, as vLLM does.
  const size_t n = size_t(p.num_prompts);
  std::vector<int> input_lens(n), output_lens(n), offsets(n);
  for (auto& v : input_lens) v = int(rng.between(input_low, input_high));
  for (auto& v : output_lens) v = int(rng.between(output_low, output_high));
  for (auto& v : offsets) v = int(rng.below(uint64_t(tokenizer.vocab_size())));

  RandomDataset dataset;
  dataset.requests.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // The prompt's own tokens: a run through the allowed vocabulary starting at offset + i.
    std::vector<int> ids = prefix;
    for (int k = 0; k < input_lens[i]; ++k) {
      ids.push_back(allowed[(size_t(offsets[i]) + i + size_t(k)) % allowed.size()]);
    }
    const int target = p.prefix_len + input_lens[i];
    Converged c = converge_to_length(tokenizer, std::move(ids), target, allowed, rng);
    dataset.token_mismatch += c.length - target;
    dataset.requests.push_back({std::move(c.text), c.length, output_lens[i]});
  }
  if (dataset.token_mismatch != 0) {
    log_warning(
        "random dataset: across all prompts there are {} {} tokens than asked after "
        "decoding and re-encoding",
        std::abs(dataset.token_mismatch), dataset.token_mismatch > 0 ? "more" : "fewer");
  }
  return dataset;
}

}  // namespace tandem::bench
