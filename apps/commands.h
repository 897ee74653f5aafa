// The `tandem` subcommands. Each lives in apps/<name>_command.cpp and takes the arguments that
// follow the subcommand name (argv[0] is "tandem <name>"). Returns the process exit code.
#pragma once

namespace tandem::apps {

int generate_command(int argc, char** argv);
int tokenize_command(int argc, char** argv);
int detokenize_command(int argc, char** argv);
int make_model_command(int argc, char** argv);
int serve_command(int argc, char** argv);
int chat_template_command(int argc, char** argv);
int proxy_command(int argc, char** argv);
int bench_model_command(int argc, char** argv);
int bench_command(int argc, char** argv);

}  // namespace tandem::apps
