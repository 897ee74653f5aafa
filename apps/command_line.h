// How every `tandem` subcommand parses its arguments: --help prints the usage and exits 0; a bad
// flag or value stops with one tandem::Error naming the command and pointing at --help.
#pragma once
#include <CLI/CLI.hpp>
#include <optional>

#include "core/error.h"

namespace tandem::apps {

// Parses into `app`'s options. Returns nullopt when the command should go on, else the exit code
// to return (after --help has been printed). Throws tandem::Error for a bad command line.
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fail("{}: {} (see --help)", argv[0], e.what());
  }
  return std::nullopt;
}

}  // namespace tandem::apps
