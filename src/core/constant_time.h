// Comparing secrets (API keys) in time that does not depend on where they first differ, so
// response timing does not reveal a key's prefix.
#pragma once
#include <string_view>

namespace tandem {

inline bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace tandem
