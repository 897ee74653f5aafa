// SeededRng: the benchmark's one source of randomness, a 64-bit Mersenne Twister with draws
// written here (not std::uniform_int_distribution, whose algorithm differs between standard
// libraries), so a --seed gives the same prompts and arrival times on every platform.
#pragma once
#include <cstdint>
#include <random>

namespace tandem::bench {

class SeededRng {
 public:
  explicit SeededRng(uint64_t seed) : engine_(seed) {}

  // Uniform integer in [0, n), n > 0, by rejection (no modulo bias).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x = engine_();
    while (x >= limit) x = engine_();
    return x % n;
  }
  // Uniform integer in [low, high], low <= high.
  int64_t between(int64_t low, int64_t high) {
    return low + int64_t(below(uint64_t(high - low) + 1));
  }
  // The underlying engine, for std:: distributions that have no portable alternative here.
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace tandem::bench
