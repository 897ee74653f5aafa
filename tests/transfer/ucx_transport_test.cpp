// The UCX transport on loopback: the whole control exchange (Hello/HelloAck on the init port,
// AllocRequest/AllocResponse on the alloc port, TransferDone) with 64 MiB put in a few large puts
// and verified byte for byte, in one process and across two processes; a lost peer (closed, or
// killed with SIGKILL) is an error within seconds, never a hang. Prints the put bandwidth.
#include "transfer/ucx_transport.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "test_support.h"
#include "transfer/ipc_buffer_key.h"
#include "transfer/transfer_buffer.h"

extern char** environ;

namespace tandem {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kTimeout = 10s;
constexpr size_t kTransferBytes = 64u << 20;
constexpr size_t kNumChunks = 4;  // 4 puts of 16 MiB
constexpr uint32_t kPageSize = 4096;

// The next message, which must be a T.
template <typename T>
T expect(Connection& connection) {
  std::optional<WireMessage> m = recv_message(connection, kTimeout);
  if (!m) throw std::runtime_error("no message within the timeout");
  if (!std::holds_alternative<T>(*m)) {
    throw std::runtime_error(std::string("unexpected ") + message_type_name(message_type(*m)));
  }
  return std::get<T>(*m);
}

// Fills a deterministic pattern: 64-bit words of a seeded sequence.
uint64_t pattern_word(size_t i, uint64_t seed) { return (i + seed) * 0x9E3779B97F4A7C15ull; }

void fill_pattern(uint8_t* data, size_t bytes, uint64_t seed) {
  auto* words = reinterpret_cast<uint64_t*>(data);
  for (size_t i = 0; i < bytes / 8; ++i) words[i] = pattern_word(i, seed);
}

BlockHash chunk_key(size_t i) {
  BlockHash h;
  h.bytes[0] = uint8_t(i + 1);
  return h;
}

void answer_hello(Connection& connection, RegisteredBuffer& buffer) {
  Hello hello = expect<Hello>(connection);
  EXPECT_EQ(hello.role, PeerRole::kSender);
  RemoteBufferInfo info = buffer.remote_info();
  send_message(connection, HelloAck{kWireVersion, HelloStatus::kOk, "test-receiver", info.address,
                                    info.size, kPageSize, info.rkey, ""});
}

// The receiver's side of one request on the alloc connection: room for its chunks, then the
// TransferDone; checks the bytes against the pattern `seed`, frees the pages (as a load would)
// and returns whether every chunk arrived intact.
bool serve_request(Connection& alloc, TransferBuffer& pages, RegisteredBuffer& buffer,
                   uint64_t seed) {
  AllocRequest request = expect<AllocRequest>(alloc);
  std::vector<uint64_t> sizes;
  for (const ChunkDesc& c : request.chunks) sizes.push_back(c.num_bytes);
  auto offsets = pages.allocate(request.request_id, sizes, Clock::now() + kTimeout);
  if (!offsets) {
    send_message(alloc, AllocResponse{request.request_id, AllocStatus::kFull, {}, "full"});
    return false;
  }
  AllocResponse response{request.request_id, AllocStatus::kOk, {}, ""};
  for (uint64_t offset : *offsets) response.slots.push_back({ChunkPlacement::kWrite, offset});
  send_message(alloc, response);
  TransferDone done = expect<TransferDone>(alloc);
  std::vector<uint8_t> expected(kTransferBytes);
  fill_pattern(expected.data(), expected.size(), seed);
  const size_t chunk_bytes = kTransferBytes / kNumChunks;
  bool ok = done.request_id == request.request_id && done.chunks.size() == kNumChunks &&
            offsets->size() == kNumChunks;
  for (size_t i = 0; ok && i < kNumChunks; ++i) {
    ok = std::memcmp(buffer.data() + (*offsets)[i], expected.data() + i * chunk_bytes,
                     chunk_bytes) == 0;
  }
  pages.release(request.request_id);
  return ok;
}

// The sender's two connections: the init port (Hello, then puts) and the alloc port.
struct SenderLinks {
  std::unique_ptr<Connection> init;
  std::unique_ptr<Connection> alloc;
};

SenderLinks connect_sender(Transport& transport, uint16_t init_port, uint16_t alloc_port) {
  SenderLinks links;
  links.init = transport.connect(test::kLoopbackHost, init_port, kTimeout);
  send_message(*links.init, Hello{kWireVersion, PeerRole::kSender, "test-sender"});
  HelloAck ack = expect<HelloAck>(*links.init);
  if (ack.status != HelloStatus::kOk) throw std::runtime_error("hello refused");
  links.init->attach_remote_buffer({ack.buffer_address, ack.buffer_size, ack.rkey});
  links.alloc = transport.connect(test::kLoopbackHost, alloc_port, kTimeout);
  return links;
}

// Sends `source` as request `request_id` in kNumChunks chunks (one put each), then tells the
// receiver. Returns the seconds from the first put to the completed flush.
double transfer(SenderLinks& links, const std::string& request_id,
                const std::vector<uint8_t>& source) {
  const size_t chunk_bytes = source.size() / kNumChunks;
  AllocRequest request{request_id, {}, {}};
  for (size_t i = 0; i < kNumChunks; ++i)
    request.chunks.push_back({chunk_key(i), 256, chunk_bytes});
  send_message(*links.alloc, request);
  AllocResponse response = expect<AllocResponse>(*links.alloc);
  if (response.status != AllocStatus::kOk || response.slots.size() != kNumChunks) {
    throw std::runtime_error("allocation refused: " + response.message);
  }
  auto start = Clock::now();
  for (size_t i = 0; i < kNumChunks; ++i) {
    links.init->put(source.data() + i * chunk_bytes, chunk_bytes, response.slots[i].offset);
  }
  links.init->flush(kTimeout);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  TransferDone done{request_id, {}};
  for (size_t i = 0; i < kNumChunks; ++i) done.chunks.push_back(chunk_key(i));
  send_message(*links.alloc, done);
  return seconds;
}

void report_bandwidth(const std::string& what, double seconds) {
  double gib_per_s = double(kTransferBytes) / seconds / double(1u << 30);
  std::printf("[ bandwidth ] %s: %zu MiB in %zu puts, %.1f ms, %.2f GiB/s\n", what.c_str(),
              kTransferBytes >> 20, kNumChunks, seconds * 1e3, gib_per_s);
  testing::Test::RecordProperty(what + "_GiB_per_s", std::to_string(gib_per_s));
}

// Two rounds: the first pays for mapping the peer's buffer (page faults), the second is the
// steady state of a long-lived connection.
constexpr int kRounds = 2;

TEST(UcxTransport, LoopbackHelloAllocPutDone) {
  std::unique_ptr<Transport> rx = make_ucx_transport();
  std::unique_ptr<Transport> tx = make_ucx_transport();
  std::unique_ptr<RegisteredBuffer> buffer = rx->allocate_buffer(kTransferBytes + (1 << 20));
  std::memset(buffer->data(), 0, buffer->size());
  TransferBuffer pages(buffer->size(), kPageSize);
  std::unique_ptr<Listener> init_listener = rx->listen(test::kLoopbackHost, 0);
  std::unique_ptr<Listener> alloc_listener = rx->listen(test::kLoopbackHost, 0);
  ASSERT_NE(init_listener->port(), 0);
  ASSERT_NE(init_listener->port(), alloc_listener->port());

  std::unique_ptr<Connection> rx_init, rx_alloc;
  std::vector<bool> verified(kRounds, false);
  std::jthread receiver([&] {
    rx_init = init_listener->accept(kTimeout);
    if (!rx_init) return;
    answer_hello(*rx_init, *buffer);
    rx_alloc = alloc_listener->accept(kTimeout);
    if (!rx_alloc) return;
    for (int round = 0; round < kRounds; ++round) {
      verified[round] = serve_request(*rx_alloc, pages, *buffer, round);
    }
  });

  SenderLinks links = connect_sender(*tx, init_listener->port(), alloc_listener->port());
  std::vector<uint8_t> source(kTransferBytes);
  for (int round = 0; round < kRounds; ++round) {
    fill_pattern(source.data(), source.size(), round);
    double seconds = transfer(links, "req-" + std::to_string(round), source);
    report_bandwidth(round == 0 ? "in-process, first" : "in-process, warm", seconds);
  }
  receiver.join();
  for (int round = 0; round < kRounds; ++round) EXPECT_TRUE(verified[round]) << round;
  TransferBufferStats stats = pages.stats();
  EXPECT_EQ(stats.used_bytes, 0u);
  EXPECT_EQ(stats.released_requests, uint64_t(kRounds));

  // Both directions carry control messages.
  ASSERT_TRUE(rx_alloc);
  send_message(*rx_alloc, Heartbeat{7});
  EXPECT_EQ(expect<Heartbeat>(*links.alloc).sequence, 7u);
}

TEST(UcxTransport, PutsAreBoundsChecked) {
  std::unique_ptr<Transport> rx = make_ucx_transport();
  std::unique_ptr<Transport> tx = make_ucx_transport();
  std::unique_ptr<RegisteredBuffer> buffer = rx->allocate_buffer(1 << 16);
  std::unique_ptr<Listener> listener = rx->listen(test::kLoopbackHost, 0);
  std::unique_ptr<Connection> client = tx->connect(test::kLoopbackHost, listener->port(), kTimeout);
  std::unique_ptr<Connection> server = listener->accept(kTimeout);
  ASSERT_TRUE(server);
  std::vector<uint8_t> data(4096, 0xAB);
  EXPECT_THROW(client->put(data.data(), data.size(), 0), Error);  // no buffer attached yet
  client->attach_remote_buffer(buffer->remote_info());
  EXPECT_THROW(client->put(data.data(), data.size(), (1 << 16) - 100), Error);
  EXPECT_THROW(client->put(data.data(), data.size(), UINT64_MAX - 10), Error);
  client->put(data.data(), data.size(), (1 << 16) - 4096);
  client->flush(kTimeout);
  EXPECT_EQ(buffer->data()[(1 << 16) - 1], 0xAB);
  EXPECT_FALSE(client->is_broken());
}

// A host-memory (UCX) sender told of a decoder buffer in GPU memory (a CUDA IPC key in the rkey)
// refuses it with a message naming the cause, not a UCX unpack error.
TEST(UcxTransport, GpuBufferKeyIsRefusedWithAClearMessage) {
  std::unique_ptr<Transport> rx = make_ucx_transport();
  std::unique_ptr<Transport> tx = make_ucx_transport();
  std::unique_ptr<Listener> listener = rx->listen(test::kLoopbackHost, 0);
  std::unique_ptr<Connection> client = tx->connect(test::kLoopbackHost, listener->port(), kTimeout);
  std::unique_ptr<Connection> server = listener->accept(kTimeout);
  ASSERT_TRUE(server);
  IpcBufferKey key;
  key.host_id = this_host_id();
  key.device = "GPU 0";
  RemoteBufferInfo gpu_buffer{0x7f0000000000, 1 << 20, encode_ipc_buffer_key(key)};
  try {
    client->attach_remote_buffer(gpu_buffer);
    FAIL() << "a CUDA IPC key was accepted by the UCX transport";
  } catch (const TransportError& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("pd_buffer_device: cuda"));
  }
  std::vector<uint8_t> data(16, 1);
  EXPECT_THROW(client->put(data.data(), data.size(), 0), Error);  // still no buffer attached
}

TEST(UcxTransport, ClosedPeerIsAnErrorNotAHang) {
  std::unique_ptr<Transport> rx = make_ucx_transport();
  std::unique_ptr<Transport> tx = make_ucx_transport();
  std::unique_ptr<Listener> listener = rx->listen(test::kLoopbackHost, 0);
  std::unique_ptr<Connection> client = tx->connect(test::kLoopbackHost, listener->port(), kTimeout);
  std::unique_ptr<Connection> server = listener->accept(kTimeout);
  ASSERT_TRUE(server);
  send_message(*client, Heartbeat{1});
  EXPECT_EQ(expect<Heartbeat>(*server).sequence, 1u);

  auto start = Clock::now();
  server->close();
  EXPECT_THROW(recv_message(*client, kTimeout), TransportError);
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_TRUE(client->is_broken());
  EXPECT_THROW(send_message(*client, Heartbeat{2}), TransportError);
}

TEST(UcxTransport, DestroyedPeerTransportIsAnError) {
  std::unique_ptr<Transport> rx = make_ucx_transport();
  std::unique_ptr<Transport> tx = make_ucx_transport();
  std::unique_ptr<RegisteredBuffer> buffer = rx->allocate_buffer(1 << 20);
  std::unique_ptr<Listener> listener = rx->listen(test::kLoopbackHost, 0);
  std::unique_ptr<Connection> client = tx->connect(test::kLoopbackHost, listener->port(), kTimeout);
  std::unique_ptr<Connection> server = listener->accept(kTimeout);
  ASSERT_TRUE(server);
  client->attach_remote_buffer(buffer->remote_info());

  auto start = Clock::now();
  server.reset();
  listener.reset();
  buffer.reset();
  rx.reset();
  EXPECT_THROW(recv_message(*client, kTimeout), TransportError);
  EXPECT_LT(Clock::now() - start, 5s);
  std::vector<uint8_t> data(4096);
  EXPECT_THROW(
      {
        client->put(data.data(), data.size(), 0);
        client->flush(kTimeout);
      },
      TransportError);
}

TEST(UcxTransport, ConnectingToNobodyFails) {
  std::unique_ptr<Transport> tx = make_ucx_transport();
  uint16_t free_port = 0;
  {
    std::unique_ptr<Transport> probe = make_ucx_transport();
    free_port = probe->listen(test::kLoopbackHost, 0)->port();
  }
  auto start = Clock::now();
  try {
    tx->connect(test::kLoopbackHost, free_port, 5s);
    FAIL() << "connected to a closed port";
  } catch (const TransportError& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr(fmt::format("{}:{}", test::kLoopbackHost, free_port)));
  }
  EXPECT_LT(Clock::now() - start, 6s);
  EXPECT_THROW(tx->connect("no-such-host.invalid", 7300, 1s), TransportError);
}

TEST(UcxTransport, TakenPortIsAnError) {
  std::unique_ptr<Transport> a = make_ucx_transport();
  std::unique_ptr<Listener> listener = a->listen(test::kLoopbackHost, 0);
  std::unique_ptr<Transport> b = make_ucx_transport();
  EXPECT_THROW(b->listen(test::kLoopbackHost, listener->port()), TransportError);
}

TEST(UcxTransport, AcceptAndRecvTimeOut) {
  std::unique_ptr<Transport> rx = make_ucx_transport();
  std::unique_ptr<Listener> listener = rx->listen(test::kLoopbackHost, 0);
  EXPECT_EQ(listener->accept(50ms), nullptr);
  std::unique_ptr<Transport> tx = make_ucx_transport();
  std::unique_ptr<Connection> client = tx->connect(test::kLoopbackHost, listener->port(), kTimeout);
  std::unique_ptr<Connection> server = listener->accept(kTimeout);
  ASSERT_TRUE(server);
  EXPECT_FALSE(recv_message(*server, 50ms).has_value());
  EXPECT_FALSE(server->is_broken());
}

// ---- two processes ---------------------------------------------------------------------------
// The parent runs this test binary again with TANDEM_UCX_CHILD_DIR set and only the child test
// selected; the child serves one transfer as the receiver, then waits to be killed.

constexpr const char* kChildDirEnv = "TANDEM_UCX_CHILD_DIR";

TEST(UcxChildProcess, ServeOneTransfer) {
  const char* dir = std::getenv(kChildDirEnv);
  if (!dir) GTEST_SKIP() << "runs only as the child of UcxTwoProcesses";
  std::unique_ptr<Transport> rx = make_ucx_transport();
  std::unique_ptr<RegisteredBuffer> buffer = rx->allocate_buffer(kTransferBytes + (1 << 20));
  TransferBuffer pages(buffer->size(), kPageSize);
  std::unique_ptr<Listener> init_listener = rx->listen(test::kLoopbackHost, 0);
  std::unique_ptr<Listener> alloc_listener = rx->listen(test::kLoopbackHost, 0);
  {
    std::ofstream ports(std::string(dir) + "/ports.tmp");
    ports << init_listener->port() << " " << alloc_listener->port() << "\n";
  }
  std::filesystem::rename(std::string(dir) + "/ports.tmp", std::string(dir) + "/ports");
  std::unique_ptr<Connection> init = init_listener->accept(kTimeout);
  ASSERT_TRUE(init);
  answer_hello(*init, *buffer);
  std::unique_ptr<Connection> alloc = alloc_listener->accept(kTimeout);
  ASSERT_TRUE(alloc);
  for (int round = 0; round < kRounds; ++round) {
    bool ok = serve_request(*alloc, pages, *buffer, round);
    send_message(*alloc, Heartbeat{ok ? 1u : 0u});
  }
  std::this_thread::sleep_for(60s);  // until the parent kills us
}

pid_t spawn_child(const std::string& dir) {
  std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string filter = "--gtest_filter=UcxChildProcess.ServeOneTransfer";
  char* argv[] = {exe.data(), filter.data(), nullptr};
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  env_strings.push_back(std::string(kChildDirEnv) + "=" + dir);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv, envp.data()) != 0) return -1;
  return pid;
}

// Waits for the child's "ports" file; {0, 0} on timeout.
std::pair<uint16_t, uint16_t> wait_for_ports(const std::filesystem::path& file) {
  for (auto deadline = Clock::now() + kTimeout; Clock::now() < deadline;) {
    std::ifstream in(file);
    int init = 0, alloc = 0;
    if (in >> init >> alloc) return {uint16_t(init), uint16_t(alloc)};
    std::this_thread::sleep_for(20ms);
  }
  return {0, 0};
}

TEST(UcxTwoProcesses, TransferThenKilledReceiverIsDetected) {
  std::filesystem::path dir = test::make_temp_dir("tandem-ucx");
  pid_t child = spawn_child(dir.string());
  ASSERT_GT(child, 0);
  auto [init_port, alloc_port] = wait_for_ports(dir / "ports");
  if (init_port == 0) kill(child, SIGKILL);
  ASSERT_NE(init_port, 0) << "the child receiver did not start";

  std::unique_ptr<Transport> tx = make_ucx_transport();
  SenderLinks links = connect_sender(*tx, init_port, alloc_port);
  std::vector<uint8_t> source(kTransferBytes);
  for (int round = 0; round < kRounds; ++round) {
    fill_pattern(source.data(), source.size(), round);
    double seconds = transfer(links, "req-" + std::to_string(round), source);
    EXPECT_EQ(expect<Heartbeat>(*links.alloc).sequence, 1u) << "the child saw other bytes";
    report_bandwidth(round == 0 ? "two-process, first" : "two-process, warm", seconds);
  }

  auto start = Clock::now();
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_THROW(recv_message(*links.alloc, kTimeout), TransportError);
  EXPECT_THROW(recv_message(*links.init, kTimeout), TransportError);
  double detect_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  std::printf("[ peer death ] detected %.0f ms after SIGKILL\n", detect_ms);
  EXPECT_LT(detect_ms, 5000);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tandem
