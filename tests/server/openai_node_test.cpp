// The official `openai` npm package (v4) against `tandem serve`: completions and chat, streamed
// and not, errors mapped to the SDK's exception classes (tests/server/openai_node/client.mjs).
// Needs Node.js 20+; the package is installed once into <build>/openai_node (scripts/setup.sh
// does it ahead of time; without network or node the test is skipped, saying why).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/json_file.h"
#include "serve_process.h"
#include "test_support.h"

namespace tandem::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

int shell(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// <build>/openai_node with client.mjs and node_modules/openai; empty with `why` on failure.
fs::path prepare_client_dir(std::string& why) {
  fs::path source = fs::path(__FILE__).parent_path() / "openai_node";
  fs::path dir = fs::path(TANDEM_BINARY_PATH).parent_path() / "openai_node";
  if (const char* env = std::getenv("TANDEM_OPENAI_NODE_DIR"); env && *env) dir = env;
  if (shell("node --version >/dev/null 2>&1") != 0) {
    why = "node is not installed";
    return {};
  }
  fs::create_directories(dir);
  fs::copy_file(source / "client.mjs", dir / "client.mjs", fs::copy_options::overwrite_existing);
  fs::copy_file(source / "package.json", dir / "package.json",
                fs::copy_options::overwrite_existing);
  if (!fs::exists(dir / "node_modules" / "openai" / "package.json")) {
    std::string install =
        "cd " + quoted(dir) + " && npm install --no-audit --no-fund --silent >npm.log 2>&1";
    if (shell(install) != 0) {
      why = "npm install openai@4 failed (no registry access?), see " + (dir / "npm.log").string();
      return {};
    }
  }
  return dir;
}

std::string sdk_chatml_file() {
  fs::path p = make_temp_dir("tandem-chatml") / "chatml.jinja";
  std::ofstream(p) << read_json_file(shared_dir() / "golden" / "chat" / "chatml.json")
                          .at("template")
                          .get<std::string>();
  return p.string();
}

TEST(OpenAiNodeClient, OfficialSdkWorksAgainstTandemServe) {
  std::string why;
  fs::path dir = prepare_client_dir(why);
  if (dir.empty()) GTEST_SKIP() << why;

  ServeProcess serve({golden_model("stories260K").string(), "--host", "127.0.0.1", "--port", "0",
                      "--served-model-name", "stories", "--api-key", "sdk-key", "--threads", "1",
                      "--kv-cache-memory", "4MiB", "--chat-template", sdk_chatml_file()});
  int port = serve.wait_for_port();
  ASSERT_GT(port, 0) << serve.log();

  fs::path out = dir / "client.out";
  std::string command = "node " + quoted(dir / "client.mjs") +
                        " http://127.0.0.1:" + std::to_string(port) + "/v1 sdk-key stories >" +
                        quoted(out) + " 2>&1";
  int code = shell(command);
  std::string output = read_text_file(out);
  ASSERT_EQ(code, 0) << output << "\nserver log:\n" << serve.log();

  // The SDK's results equal what the server answers a plain HTTP client.
  json summary = json::parse(output.substr(output.rfind('{')));
  httplib::Client client("127.0.0.1", port);
  httplib::Headers auth = {{"Authorization", "Bearer sdk-key"}};
  json body = {
      {"model", "stories"}, {"prompt", "Once upon a time"}, {"max_tokens", 12}, {"temperature", 0}};
  auto direct = client.Post("/v1/completions", auth, body.dump(), "application/json");
  ASSERT_EQ(direct->status, 200);
  EXPECT_EQ(summary["completion"], json::parse(direct->body)["choices"][0]["text"]);
  EXPECT_FALSE(summary["chat"].get<std::string>().empty());
  EXPECT_EQ(serve.stop(), 0);
}

}  // namespace
}  // namespace tandem::test
