// Reading JSON files with errors that name the file (and the key, for typed look-ups).
#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace tandem {

// Parses the file; throws tandem::Error "<path>: ..." if missing or not valid JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

// The string contents of a file; throws tandem::Error naming the path.
std::string read_file(const std::filesystem::path& path);

}  // namespace tandem
