// TemplateError: every failure of a chat template (syntax, runtime, limits, raise_exception)
// is one of these, carrying the template line it happened at (0 while not yet known: the
// renderer fills in the line of the node being evaluated as the error passes through it).
#pragma once
#include <string>
#include <utility>

#include "core/error.h"

namespace tandem::chat {

// kLimit: a render limit was exceeded (never caught and deferred by lazy constructs).
enum class TemplateErrorKind { kTemplate, kLimit };

class TemplateError : public Error {
 public:
  TemplateError(int line, std::string message,
                TemplateErrorKind kind = TemplateErrorKind::kTemplate)
      : Error(format_what(line, message)), line_(line), message_(std::move(message)), kind_(kind) {}
  explicit TemplateError(std::string message) : TemplateError(0, std::move(message)) {}

  // The line (1-based) in the template source; 0 when unknown.
  [[nodiscard]] int line() const { return line_; }
  // The message without the "chat template, line N:" prefix (for raise_exception: its text).
  [[nodiscard]] const std::string& message() const { return message_; }
  [[nodiscard]] TemplateErrorKind kind() const { return kind_; }
  [[nodiscard]] TemplateError with_line(int line) const {
    return TemplateError(line, message_, kind_);
  }

 private:
  static std::string format_what(int line, const std::string& message) {
    if (line <= 0) return "chat template: " + message;
    return "chat template, line " + std::to_string(line) + ": " + message;
  }

  int line_;
  std::string message_;
  TemplateErrorKind kind_;
};

// Throws a TemplateError with a fmt-formatted message (line filled in by the renderer).
template <typename... Args>
[[noreturn]] void template_fail(fmt::format_string<Args...> format, Args&&... args) {
  throw TemplateError(fmt::format(format, std::forward<Args>(args)...));
}

// Throws a kLimit TemplateError.
template <typename... Args>
[[noreturn]] void limit_fail(fmt::format_string<Args...> format, Args&&... args) {
  throw TemplateError(0, fmt::format(format, std::forward<Args>(args)...),
                      TemplateErrorKind::kLimit);
}

}  // namespace tandem::chat
