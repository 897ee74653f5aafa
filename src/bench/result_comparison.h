// ResultComparison: two saved benchmark results side by side, each figure of the printed block
// with the ratio of the second to the first, e.g. a single server vs the 1p1d system. Used by
// `tandem bench compare A.json B.json` and bench/seed_benchmark.sh.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace tandem::bench {

// Rows for every figure both results have (throughputs, then mean/median/percentiles of TTFT,
// TPOT, ITL, E2EL); "-" where a ratio is undefined (a zero baseline).
std::string format_comparison(const nlohmann::json& first, const std::string& first_name,
                              const nlohmann::json& second, const std::string& second_name);

}  // namespace tandem::bench
