// The 1p1d launcher (examples/disagg_prefill/1p1d/disagg_example_1p1d.sh) on free ports with the
// built tandem and stories260K: it starts the prefiller, decoder and proxy, the seed's curl
// request through the proxy gets its answer, and SIGINT stops everything (no process left); a
// role that cannot start is named with its log; a role that dies takes the others down; a port
// already in use is named before anything starts.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_engines.h"
#include "test_support.h"

extern char** environ;

namespace tandem::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

// The PIDs of live `tandem` processes whose command line contains `needle`.
std::vector<pid_t> tandem_processes_with(const std::string& needle) {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find("tandem") != std::string::npos && cmdline.find(needle) != std::string::npos &&
        cmdline.find("disagg_example") == std::string::npos) {
      out.push_back(pid_t(std::stoi(name)));
    }
  }
  return out;
}

class Launcher {
 public:
  explicit Launcher(std::vector<std::string> extra_env = {}) {
    dir_ = make_temp_dir("tandem-launcher");
    ports_ = {dead_port(), dead_port(), dead_port(), dead_port(), dead_port(), dead_port()};
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    for (const std::string& e : std::vector<std::string>
         {"PREFILLER_PORT=" + std::to_string(ports_[0]), "DECODER_PORT=" + std::to_string(ports_[1]),
          "DECODER_INIT_PORT=" + std::to_string(ports_[2]),
          "DECODER_ALLOC_PORT=" + std::to_string(ports_[3]),
          "PROXY_PORT=" + std::to_string(ports_[4]),
          "PROXY_NOTIFY_PORT=" + std::to_string(ports_[5]), "LOG_DIR=" + dir_.string(),
          std::string("TANDEM_BIN=") + TANDEM_BINARY_PATH, std::string("HEALTH_TIMEOUT=60"),
          "TANDEM_SHARED=" + shared_dir().string(),
          std::string("PROXY_EXTRA_ARGS=--transfer-timeout 20")}) {
      env.push_back(e);
    }
    for (const std::string& e : extra_env) {  // replaces a default of the same name
      const std::string key = e.substr(0, e.find('=') + 1);
      std::erase_if(env, [&](const std::string& have) { return have.rfind(key, 0) == 0; });
      env.push_back(e);
    }
    std::vector<char*> cenv;
    for (auto& e : env) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    std::string script =
        std::string(TANDEM_SOURCE_DIR) + "/examples/disagg_prefill/1p1d/disagg_example_1p1d.sh";
    std::vector<std::string> argv = {"/bin/bash", script};
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    out_path_ = (dir_ / "launcher.out").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    if (posix_spawn(&pid_, cargv[0], &actions, &attr, cargv.data(), cenv.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  ~Launcher() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGTERM);
      wait_exit(30s);
    }
    for (pid_t p : live_roles()) kill(p, SIGKILL);  // only ours: they carry our unique ports
  }

  // Waits for the "All servers are up" line; false if the script exited or time ran out.
  bool wait_until_up(std::chrono::seconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (output().find("All servers are up") != std::string::npos) return true;
      if (has_exited()) return false;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  // The script's exit code once it exits within `limit`, else -1.
  int wait_exit(std::chrono::seconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!has_exited() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(50ms);
    return exited_ && WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }
  void signal(int sig) { kill(pid_, sig); }
  std::string output() const { return read_text_file(out_path_); }
  std::string log(const std::string& role) const { return read_text_file(dir_ / (role + ".log")); }
  int proxy_port() const { return ports_[4]; }
  int decoder_port() const { return ports_[1]; }
  // Live tandem processes started for this launcher (found by its unique ports).
  std::vector<pid_t> live_roles() const {
    std::vector<pid_t> out;
    for (int port : {ports_[0], ports_[1], ports_[4]}) {
      auto found = tandem_processes_with("--port " + std::to_string(port) + " ");
      out.insert(out.end(), found.begin(), found.end());
    }
    return out;
  }

 private:
  bool has_exited() {
    if (!exited_ && pid_ > 0) exited_ = waitpid(pid_, &status_, WNOHANG) == pid_;
    return exited_;
  }

  fs::path dir_;
  std::vector<int> ports_;
  std::string out_path_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
};

std::string model_path() { return fs::canonical(golden_model("stories260K")).string(); }

TEST(Launcher, ServesTheSeedRequestThroughThe1p1dSystemAndStopsOnSigint) {
  Launcher launcher;
  ASSERT_TRUE(launcher.wait_until_up(90s)) << launcher.output();
  EXPECT_EQ(launcher.live_roles().size(), 3u);
  // The seed's request: curl -X POST http://localhost:9100/v1/completions ...
  std::string command = "curl -s -w '\\n%{http_code}' -X POST http://localhost:" +
                        std::to_string(launcher.proxy_port()) +
                        "/v1/completions -H \"Content-Type: application/json\" -d '{\"model\": \"" +
                        model_path() + "\", \"prompt\": \"Once upon a time\", \"max_tokens\": 16}'";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string answer;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) answer.append(buf, n);
  pclose(pipe);
  size_t nl = answer.rfind('\n');
  EXPECT_NE(nl, std::string::npos) << answer;
  if (nl != std::string::npos) {
    EXPECT_EQ(answer.substr(nl + 1), "200") << answer << "\nproxy.log:\n" << launcher.log("proxy");
    json body = json::parse(answer.substr(0, nl), nullptr, false);
    bool has_text = body.is_object() && body.contains("choices") && body["choices"].is_array() &&
                    !body["choices"].empty() && body["choices"][0].value("text", "") != "";
    EXPECT_TRUE(has_text) << answer;
  }

  launcher.signal(SIGINT);
  EXPECT_EQ(launcher.wait_exit(30s), 0) << launcher.output();
  EXPECT_TRUE(launcher.live_roles().empty());
  EXPECT_THAT(launcher.output(), HasSubstr("All processes stopped."));
}

TEST(Launcher, NamesARoleThatCannotStartAndItsLog) {
  Launcher launcher({"MODEL=/nonexistent/model"});
  EXPECT_EQ(launcher.wait_exit(90s), 1) << launcher.output();
  EXPECT_THAT(launcher.output(), HasSubstr("exited during start-up; see "));
  EXPECT_THAT(launcher.output(), HasSubstr("decoder.log"));
  EXPECT_TRUE(launcher.live_roles().empty());
}

TEST(Launcher, RefusesToStartWhenOneOfItsPortsIsInUse) {
  // Something listens on the proxy's notification port (an earlier run still up).
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int busy = dead_port();
  addr.sin_port = htons(uint16_t(busy));
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  Launcher launcher({"PROXY_NOTIFY_PORT=" + std::to_string(busy)});
  EXPECT_EQ(launcher.wait_exit(30s), 1) << launcher.output();
  close(fd);
  EXPECT_THAT(launcher.output(),
              HasSubstr("port " + std::to_string(busy) + " (PROXY_NOTIFY_PORT) is already in use"));
  EXPECT_THAT(launcher.output(), Not(HasSubstr("Launching")));
  EXPECT_TRUE(launcher.live_roles().empty());
}

TEST(Launcher, ARoleThatDiesStopsTheOthers) {
  Launcher launcher;
  ASSERT_TRUE(launcher.wait_until_up(90s)) << launcher.output();
  auto decoder = tandem_processes_with("--port " + std::to_string(launcher.decoder_port()) + " ");
  ASSERT_EQ(decoder.size(), 1u);
  kill(decoder[0], SIGKILL);
  EXPECT_EQ(launcher.wait_exit(30s), 1) << launcher.output();
  EXPECT_THAT(launcher.output(), HasSubstr("the decoder exited"));
  EXPECT_TRUE(launcher.live_roles().empty());
}

}  // namespace
}  // namespace tandem::test
