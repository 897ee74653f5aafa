// Errors: one exception type carrying a complete, human-readable message.
// Loaders and parsers throw tandem::Error with the file, key or tensor named in the message;
// the CLI and the server turn it into one error line / one JSON error.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace tandem {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws tandem::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace tandem

// Throws tandem::Error(fmt::format(...)) when `cond` is false.
#define TANDEM_CHECK(cond, ...)           \
  do {                                    \
    if (!(cond)) ::tandem::fail(__VA_ARGS__); \
  } while (0)
