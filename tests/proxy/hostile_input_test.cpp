// Hostile HTTP input against a real 1p1d system (stories260K on CPU, free ports): every request of
// hostile_requests/corpus.jsonl (malformed and truncated JSON, wrong types, huge numbers, invalid
// UTF-8, deep nesting, 100 MB bodies, bad roles, template-breaking kwargs, out-of-vocabulary ids,
// bad paths, methods and HTTP framing) goes to the proxy, the prefiller and the decoder, and each
// must answer with the corpus's status and an OpenAI-style JSON error; afterwards every server is
// healthy and answers a good request. make_corpus.py (beside the corpus) documents the format.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "fake_engines.h"
#include "one_p_one_d.h"
#include "tandem_process.h"
#include "test_support.h"

namespace tandem::test {
namespace {

struct CorpusCase {
  std::string name;
  std::string request;  // the exact bytes sent
  bool half_close = false;
  std::vector<int> engine_status;  // acceptable statuses
  std::vector<int> proxy_status;
};

std::vector<int> statuses(const json& value) {
  if (value.is_array()) return value.get<std::vector<int>>();
  return {value.get<int>()};
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(char(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

CorpusCase build_case(const json& line, const std::string& model) {
  CorpusCase c;
  c.name = line.at("name");
  c.half_close = line.value("half_close", false);
  c.engine_status = statuses(line.at("status"));
  c.proxy_status = line.contains("proxy_status") ? statuses(line["proxy_status"]) : c.engine_status;
  if (line.contains("raw")) {
    c.request = line["raw"];
    return c;
  }
  std::string body;
  bool has_body = true;
  if (line.contains("body")) {
    body = line["body"];
  } else if (line.contains("body_hex")) {
    body = from_hex(line["body_hex"]);
  } else if (line.contains("body_parts")) {
    for (const json& part : line["body_parts"]) {
      const std::string text = part[0];
      size_t times = part[1];
      body.reserve(body.size() + text.size() * times);
      for (size_t i = 0; i < times; ++i) body += text;
    }
  } else {
    has_body = false;
  }
  replace_all(body, "\"MODEL\"", json(model).dump());
  c.request = line.value("method", "POST") + " " + line.value("path", "/v1/completions") +
              " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + line.value("headers", "");
  if (has_body) c.request += "Content-Type: application/json\r\n";
  c.request += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return c;
}

std::vector<CorpusCase> load_corpus(const std::string& model) {
  std::ifstream in(std::string(TANDEM_SOURCE_DIR) + "/tests/proxy/hostile_requests/corpus.jsonl");
  std::vector<CorpusCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) cases.push_back(build_case(json::parse(line), model));
  }
  return cases;
}

struct Reply {
  int status = 0;  // 0: no HTTP answer
  std::string headers;
  std::string body;
};

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) > 0;
}

// Sends `request` and reads one answer. A large body stops going out as soon as the server
// answers (a 413 after the headers), so the answer is not lost to a connection reset.
Reply exchange(int port, const CorpusCase& c, bool half_close) {
  Reply reply;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return reply;
  }
  const std::string& r = c.request;
  size_t header_end = r.find("\r\n\r\n");
  size_t sent = 0;
  if (r.size() > (1 << 20) && header_end != std::string::npos) {
    sent = header_end + 4;
    send(fd, r.data(), sent, MSG_NOSIGNAL);
    readable(fd, 3000);  // a server that refuses by Content-Length answers now
  }
  while (sent < r.size() && !readable(fd, 0)) {
    size_t piece = std::min<size_t>(r.size() - sent, 1 << 20);
    ssize_t n = send(fd, r.data() + sent, piece, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += size_t(n);
  }
  if (half_close) shutdown(fd, SHUT_WR);
  std::string all;
  char buf[65536];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!readable(fd, 1000)) continue;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    all.append(buf, size_t(n));
    size_t end = all.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    std::string lower = all.substr(0, end);
    for (char& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    size_t cl = lower.find("content-length:");
    if (cl != std::string::npos && all.size() >= end + 4 + std::stoul(lower.substr(cl + 15))) break;
  }
  close(fd);
  size_t end = all.find("\r\n\r\n");
  if (all.size() < 12 || all.compare(0, 5, "HTTP/") != 0 || end == std::string::npos) return reply;
  reply.status = std::stoi(all.substr(9, 3));
  reply.headers = all.substr(0, end);
  reply.body = all.substr(end + 4);
  return reply;
}

// "" when `reply` is what the case expects; else what is wrong.
std::string check_reply(const Reply& reply, const std::vector<int>& expected) {
  if (std::find(expected.begin(), expected.end(), reply.status) == expected.end()) {
    return fmt::format("status {} (expected {})", reply.status, fmt::join(expected, " or "));
  }
  json body = json::parse(reply.body, nullptr, false);
  if (reply.status == 200) {
    return body.is_object() && body.contains("choices") ? "" : "a 200 without choices";
  }
  std::string lower = reply.headers;
  for (char& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  if (lower.find("content-type: application/json") == std::string::npos) {
    return "no 'Content-Type: application/json'";
  }
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) {
    return "not an OpenAI error body";
  }
  const json& error = body["error"];
  bool ok = error.contains("message") && error["message"].is_string() &&
            !error["message"].get<std::string>().empty() && error.contains("type") &&
            error["type"] == "invalid_request_error" && error.contains("code") &&
            error.contains("param");
  return ok ? "" : "the error lacks message, type invalid_request_error, param or code";
}

bool healthy(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  auto r = client.Get("/health");
  return r && r->status == 200;
}

class HostileInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    system_ = std::make_unique<OnePOneD>();
    ready_ = system_->wait_ready();
  }
  static void TearDownTestSuite() { system_.reset(); }
  void SetUp() override { ASSERT_EQ(ready_, ""); }

  static inline std::unique_ptr<OnePOneD> system_;
  static inline std::string ready_;
};

TEST_F(HostileInput, CorpusHoldsAtLeast200BadRequests) {
  std::vector<CorpusCase> cases = load_corpus(system_->model());
  size_t bad = 0;
  std::set<std::string> names;
  for (const CorpusCase& c : cases) {
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate case " << c.name;
    if (c.engine_status.front() >= 400) ++bad;
  }
  EXPECT_GE(bad, 200u);
}

TEST_F(HostileInput, EveryBadRequestGetsAJsonErrorAndEveryServerStaysHealthy) {
  std::vector<CorpusCase> cases = load_corpus(system_->model());
  struct Target {
    const char* name;
    int port;
    bool proxy;
  };
  const Target targets[] = {{"prefiller", system_->prefiller_port(), false},
                            {"decoder", system_->decoder_port(), false},
                            {"proxy", system_->proxy_port(), true}};
  std::vector<std::string> failures;
  size_t sent = 0;
  for (const Target& target : targets) {
    for (const CorpusCase& c : cases) {
      // cpp-httplib (the engines) takes a half-closed connection for a closed one and answers
      // nothing; they get a truncated request on an open connection and answer it with a 400
      // after their 5-s read timeout. The proxy answers either.
      Reply reply = exchange(target.port, c, c.half_close && target.proxy);
      ++sent;
      std::string problem = check_reply(reply, target.proxy ? c.proxy_status : c.engine_status);
      if (problem.empty()) continue;
      failures.push_back(fmt::format("{} / {}: {}: {}", target.name, c.name, problem,
                                     reply.body.substr(0, 300)));
      if (!healthy(target.port)) {
        failures.push_back(fmt::format("{} is down after {}", target.name, c.name));
        break;
      }
    }
  }
  EXPECT_TRUE(failures.empty()) << failures.size() << " of " << sent << " answers were wrong:\n"
                                << fmt::format("{}", fmt::join(failures, "\n"));
  for (const Target& target : targets) {
    EXPECT_TRUE(healthy(target.port)) << target.name << " is not healthy";
    json body = {{"model", system_->model()}, {"prompt", "Once upon a time"}, {"max_tokens", 8},
                 {"temperature", 0}};
    RawReply good = post(target.port, "/v1/completions", body);
    EXPECT_EQ(good.status, 200) << target.name << ": " << good.body;
  }
}

// --api-key on all three: clients need the proxy's key, the proxy sends the engines theirs.
TEST(HostileInputAuth, EveryServerEnforcesItsApiKeyAndTheProxySendsTheEnginesOne) {
  OnePOneD::Options options;
  options.engine_flags = {"--api-key", "engine-secret"};
  options.proxy_flags = {"--api-key", "client-secret", "--engine-api-key", "engine-secret"};
  OnePOneD system(options);
  ASSERT_EQ(system.wait_ready(), "");
  json body = {{"model", system.model()}, {"prompt", "Once upon a time"}, {"max_tokens", 4},
               {"temperature", 0}};
  struct Target {
    const char* name;
    int port;
    const char* key;
  };
  const Target targets[] = {{"proxy", system.proxy_port(), "client-secret"},
                            {"prefiller", system.prefiller_port(), "engine-secret"},
                            {"decoder", system.decoder_port(), "engine-secret"}};
  for (const Target& t : targets) {
    for (const std::string& header : {std::string(), std::string("Authorization: Bearer nope\r\n"),
                                     std::string("Authorization: ") + t.key + "\r\n"}) {
      RawReply denied = post(t.port, "/v1/completions", body, header);
      EXPECT_EQ(denied.status, 401) << t.name << " with '" << header << "': " << denied.body;
      json error = json::parse(denied.body, nullptr, false);
      EXPECT_TRUE(error.is_object() && error["error"]["code"] == "invalid_api_key") << denied.body;
    }
    EXPECT_EQ(raw_request(t.port, "GET", "/health", "").status, 200) << t.name;
    RawReply ok = post(t.port, "/v1/completions", body,
                       std::string("Authorization: Bearer ") + t.key + "\r\n");
    EXPECT_EQ(ok.status, 200) << t.name << ": " << ok.body;
  }
}

}  // namespace
}  // namespace tandem::test
