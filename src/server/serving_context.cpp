// Model-name resolution and response ids.
#include "server/serving_context.h"

#include <algorithm>
#include <chrono>
#include <random>

#include <fmt/format.h>

#include "server/openai_errors.h"

namespace tandem {

const std::string& resolve_model_name(const ServedModel& model,
                                      const std::optional<std::string>& requested) {
  if (!requested) return model.names.front();
  auto it = std::find(model.names.begin(), model.names.end(), *requested);
  if (it != model.names.end()) return *it;
  throw ApiError(HttpStatus::kNotFound, fmt::format("The model `{}` does not exist.", *requested),
                 std::string("model"), std::string("model_not_found"));
}

std::string new_request_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}-{:016x}{:016x}", prefix, rng(), rng());
}

int64_t unix_time_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace tandem
