// A pre-tokenized text's words through BPE, in parallel when there are many: a word's ids depend
// on that word alone (and BpeModel's word cache is thread-safe), so contiguous ranges tokenized on
// their own threads and joined in order give the same ids as one pass. A 7500-token prompt of
// random text is ~4,000 words, and every engine tokenizes every prompt on its request's path.
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/bpe_model.h"
#include "tokenizer/tokenizer.h"

namespace tandem::tokenizer {

// Words a thread takes at least; shorter lists run on the calling thread alone.
constexpr size_t kWordsPerThread = 512;
constexpr size_t kMaxEncodeThreads = Tokenizer::kDefaultEncodeThreads;

// Appends the ids of `words` to `ids`, in order, on up to `max_threads` threads (the calling one
// included; fewer where the machine has fewer cores or a thread cannot be started).
void tokenize_words(const BpeModel& model, std::span<const std::string_view> words,
                    std::vector<int>& ids, size_t max_threads = kMaxEncodeThreads);
void tokenize_words(const BpeModel& model, const std::vector<std::string>& words,
                    std::vector<int>& ids, size_t max_threads = kMaxEncodeThreads);

}  // namespace tandem::tokenizer
