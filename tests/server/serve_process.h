// ServeProcess: the built `tandem serve ...` running in the background for end-to-end tests of
// the command itself (started with --port 0, its port learnt from its log line).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "tandem_process.h"

namespace tandem::test {

class ServeProcess : public TandemProcess {
 public:
  // args: what follows `tandem serve`; env: extra NAME=VALUE entries.
  explicit ServeProcess(std::vector<std::string> args, std::vector<std::string> env = {})
      : TandemProcess(serve_args(std::move(args)), std::move(env)) {}

 private:
  static std::vector<std::string> serve_args(std::vector<std::string> args) {
    args.insert(args.begin(), "serve");
    return args;
  }
};

}  // namespace tandem::test
