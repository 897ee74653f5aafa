// TandemProcess: a built `tandem <subcommand> ...` running in the background for end-to-end
// tests (a server, a prefiller, a decoder or the proxy): waits for its "on http://HOST:PORT"
// log line, stops it with a signal (or kills it, to play a crash), and shows what it logged
// (stderr and stdout, in one file).
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

extern char** environ;

namespace tandem::test {

class TandemProcess {
 public:
  // args: what follows `tandem`; env: extra NAME=VALUE entries (each replaces the inherited
  // variable, or an earlier entry, of that name).
  TandemProcess(std::vector<std::string> args, std::vector<std::string> env = {}) {
    log_path_ = (make_temp_dir("tandem-" + args.front()) / "stderr.log").string();
    std::vector<std::string> argv = {TANDEM_BINARY_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) envs.emplace_back(*e);
    // A later NAME=VALUE replaces an earlier one (getenv would see only the first).
    for (const std::string& entry : env) {
      std::string name = entry.substr(0, entry.find('=') + 1);
      std::erase_if(envs, [&](const std::string& e) { return e.rfind(name, 0) == 0; });
      envs.push_back(entry);
    }
    std::vector<char*> cenv;
    for (auto& e : envs) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 2, 1);
    if (posix_spawn(&pid_, cargv[0], &actions, nullptr, cargv.data(), cenv.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~TandemProcess() { kill_now(); }
  TandemProcess(const TandemProcess&) = delete;
  TandemProcess& operator=(const TandemProcess&) = delete;

  // Waits (up to 60 s) for "on http://HOST:PORT"; the port, or -1 if the process exited first.
  int wait_for_port() {
    std::regex re(R"(on http://[^:]+:(\d+))");
    for (int i = 0; i < 6000; ++i) {
      std::smatch m;
      std::string text = log();
      if (std::regex_search(text, m, re)) return std::stoi(m[1]);
      if (has_exited()) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  // SIGKILL, as a crash.
  void kill_now() {
    if (pid_ > 0 && !has_exited()) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status_, 0);
      exited_ = true;
    }
  }
  // Sends `sig` and waits up to 30 s; the exit code (-1: killed or still running).
  int stop(int sig = SIGTERM) {
    if (pid_ <= 0) return -1;
    if (!has_exited()) kill(pid_, sig);
    for (int i = 0; i < 3000 && !has_exited(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return exited_ && WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }
  // Waits up to 60 s for the process to exit on its own (a start-up error); its exit code.
  int wait_exit() {
    for (int i = 0; i < 6000 && !has_exited(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return exited_ && WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }
  std::string log() const { return read_text_file(log_path_); }
  pid_t pid() const { return pid_; }
  // Sends `sig` (SIGSTOP/SIGCONT: a hung process and its recovery) if the process still runs.
  void send_signal(int sig) {
    if (pid_ > 0 && !has_exited()) kill(pid_, sig);
  }
  bool running() { return pid_ > 0 && !has_exited(); }

 private:
  bool has_exited() {
    if (!exited_ && pid_ > 0) exited_ = waitpid(pid_, &status_, WNOHANG) == pid_;
    return exited_;
  }

  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
  std::string log_path_;
};

}  // namespace tandem::test
