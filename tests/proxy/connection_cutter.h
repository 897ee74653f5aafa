// cut_tcp_connections: cuts the TCP connections between two of the test's child processes, as a
// network fault would — no hook in the code under test. It finds process A's sockets whose
// remote port is a local port of one of process B's sockets (/proc/PID/fd + /proc/net/tcp*),
// takes a duplicate of each from A (pidfd_getfd: allowed for a parent, or root) and shuts it
// down both ways, so both ends see the connection end. Linux 5.6+.
#pragma once
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace tandem::test {

namespace connection_cutter_detail {

// socket inode -> fd number, for every socket `pid` holds.
inline std::map<unsigned long, int> socket_fds(pid_t pid) {
  std::map<unsigned long, int> out;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::string target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (ec || target.rfind("socket:[", 0) != 0) continue;
    out[std::stoul(target.substr(8))] = std::stoi(entry.path().filename().string());
  }
  return out;
}

struct TcpRow {
  int local_port = 0;
  int remote_port = 0;
  int state = 0;  // 1: ESTABLISHED
};

// socket inode -> ports and state, from /proc/net/tcp and tcp6 (as seen from `pid`'s namespace).
inline std::map<unsigned long, TcpRow> tcp_rows(pid_t pid) {
  std::map<unsigned long, TcpRow> out;
  for (const char* file : {"tcp", "tcp6"}) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/net/" + file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream row(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
      unsigned long inode = 0;
      row >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >>
          inode;
      if (!row || inode == 0) continue;
      auto port = [](const std::string& address) {
        return std::stoi(address.substr(address.find(':') + 1), nullptr, 16);
      };
      out[inode] = {port(local), port(remote), std::stoi(state, nullptr, 16)};
    }
  }
  return out;
}

}  // namespace connection_cutter_detail

// Shuts down every established TCP connection from process `a` to process `b`; how many.
inline int cut_tcp_connections(pid_t a, pid_t b) {
  using namespace connection_cutter_detail;
  std::map<unsigned long, TcpRow> rows = tcp_rows(a);
  std::set<int> b_ports;
  for (const auto& [inode, fd] : socket_fds(b)) {
    auto it = rows.find(inode);
    if (it != rows.end()) b_ports.insert(it->second.local_port);
  }
  int pidfd = int(syscall(SYS_pidfd_open, a, 0));
  if (pidfd < 0) return -1;
  int cut = 0;
  for (const auto& [inode, fd] : socket_fds(a)) {
    auto it = rows.find(inode);
    if (it == rows.end() || it->second.state != 1 || !b_ports.count(it->second.remote_port)) continue;
    int copy = int(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
    if (copy < 0) continue;
    if (shutdown(copy, SHUT_RDWR) == 0) ++cut;
    close(copy);
  }
  close(pidfd);
  return cut;
}

}  // namespace tandem::test
