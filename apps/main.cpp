// `tandem <subcommand> ...`: dispatches to one subcommand; errors become one line and exit 1.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "commands.h"

namespace {

struct Subcommand {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const Subcommand kSubcommands[] = {
    {"generate", tandem::apps::generate_command, "generate text from a prompt"},
    {"tokenize", tandem::apps::tokenize_command, "print the token ids of a text"},
    {"detokenize", tandem::apps::detokenize_command, "print the text of token ids"},
    {"make-model", tandem::apps::make_model_command, "write a random-weight HF model directory"},
    {"serve", tandem::apps::serve_command, "serve a model with an OpenAI-compatible API"},
    {"chat-template", tandem::apps::chat_template_command, "print a chat-template rendering"},
    {"proxy", tandem::apps::proxy_command, "the disaggregated-prefill proxy (prefiller -> decoder)"},
    {"bench-model", tandem::apps::bench_model_command, "time prefill and decode steps"},
    {"bench", tandem::apps::bench_command, "benchmark a server (`serve`) or plot a result (`plot`)"},
};

void print_usage(FILE* to) {
  std::fprintf(to, "usage: tandem <subcommand> [options]\n\nsubcommands:\n");
  for (const auto& s : kSubcommands) std::fprintf(to, "  %-12s %s\n", s.name, s.summary);
  std::fprintf(to, "\n`tandem <subcommand> --help` lists a subcommand's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage(stdout);
    return 0;
  }
  for (const auto& s : kSubcommands) {
    if (std::strcmp(argv[1], s.name) != 0) continue;
    std::string name = std::string("tandem ") + s.name;
    argv[1] = name.data();
    try {
      return s.run(argc - 1, argv + 1);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "error: unknown subcommand '%s' (see `tandem --help`)\n", argv[1]);
  return 2;
}
