// The current time in UTC as ISO 8601 ("2026-11-27T09:24:13Z"): the "date" of every benchmark
// JSON (bench-model, the micro-benchmarks), so results from different tools compare as text.
#pragma once
#include <ctime>
#include <string>

namespace tandem {

inline std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace tandem
