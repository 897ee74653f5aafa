#include "test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace tandem::test {

std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("TANDEM_SHARED"); env && *env) return env;
  return TANDEM_DEFAULT_SHARED_DIR;
}

std::filesystem::path golden_model(const std::string& name) {
  return shared_dir() / "golden" / "models" / name;
}

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path make_temp_dir(const std::string& prefix) {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto dir = std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(rd()));
    if (std::filesystem::create_directory(dir)) return dir;
  }
  throw std::runtime_error("cannot create a temp dir");
}

CommandResult run_tandem(const std::string& args) {
  auto dir = make_temp_dir("tandem-cli");
  auto out_path = dir / "out", err_path = dir / "err";
  std::string cmd = std::string("'") + TANDEM_BINARY_PATH + "' " + args + " >'" +
                    out_path.string() + "' 2>'" + err_path.string() + "'";
  int status = std::system(cmd.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_text_file(out_path);
  result.err = read_text_file(err_path);
  std::filesystem::remove_all(dir);
  return result;
}

int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("closed_port: no socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  close(fd);
  if (!ok) throw std::runtime_error("closed_port: cannot bind a loopback port");
  return ntohs(addr.sin_port);
}

}  // namespace tandem::test
