#include "tokenizer/word_batch.h"

#include <algorithm>
#include <exception>
#include <system_error>
#include <thread>

namespace tandem::tokenizer {

void tokenize_words(const BpeModel& model, const std::vector<std::string>& words,
                    std::vector<int>& ids, size_t max_threads) {
  const std::vector<std::string_view> views(words.begin(), words.end());
  tokenize_words(model, std::span<const std::string_view>(views), ids, max_threads);
}

void tokenize_words(const BpeModel& model, std::span<const std::string_view> words,
                    std::vector<int>& ids, size_t max_threads) {
  const size_t threads =
      std::min({max_threads, size_t(std::max(1u, std::thread::hardware_concurrency())),
                words.size() / kWordsPerThread});
  if (threads < 2) {
    model.tokenize(words, ids);
    return;
  }
  const size_t per = (words.size() + threads - 1) / threads;
  std::vector<std::vector<int>> parts(threads);
  std::vector<std::exception_ptr> errors(threads);
  const auto run = [&](size_t part) {
    try {
      const size_t begin = std::min(words.size(), part * per);
      const size_t end = std::min(words.size(), (part + 1) * per);
      model.tokenize(words.subspan(begin, end - begin), parts[part]);
    } catch (...) {
      errors[part] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  size_t started = 1;
  try {
    for (; started < threads; ++started) pool.emplace_back(run, started);
  } catch (const std::system_error&) {  // no more threads to be had: this one does the rest
  }
  for (size_t part = started; part < threads; ++part) run(part);
  run(0);
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  for (const std::vector<int>& part : parts) ids.insert(ids.end(), part.begin(), part.end());
}

}  // namespace tandem::tokenizer
