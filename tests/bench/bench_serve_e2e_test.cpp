// `tandem bench serve` and `tandem bench plot` as processes against a real `tandem serve` on
// stories260K: streamed completions and chat requests all succeed with the asked token counts,
// a failing endpoint is counted and its errors printed, the saved JSON plots, and flag errors
// name the flag.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/json_file.h"
#include "server/serve_process.h"
#include "test_support.h"

namespace tandem::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string model_dir() { return golden_model("stories260K").string(); }

std::string chatml_file() {
  auto dir = make_temp_dir("tandem-bench-chatml");
  std::string path = (dir / "chatml.jinja").string();
  std::ofstream(path) << read_json_file(shared_dir() / "golden" / "chat" / "chatml.json")
                             .at("template")
                             .get<std::string>();
  return path;
}

class BenchServeE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServeProcess({model_dir(), "--host", "127.0.0.1", "--port", "0",
                                "--chat-template", chatml_file(), "--disable-log-requests"});
    port_ = server_->wait_for_port();
  }
  static void TearDownTestSuite() {
    server_->stop();
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_GT(port_, 0) << server_->log(); }

  // Runs `tandem bench serve` against the server with a small random workload.
  static CommandResult bench(const std::string& extra) {
    return run_tandem("bench serve --base-url http://127.0.0.1:" + std::to_string(port_) +
                      " --random-input-len 32 --random-output-len 8 --num-prompts 4"
                      " --ignore-eos --disable-tqdm " +
                      extra);
  }

  static ServeProcess* server_;
  static int port_;
};

ServeProcess* BenchServeE2E::server_ = nullptr;
int BenchServeE2E::port_ = -1;

TEST_F(BenchServeE2E, CompletionsStreamAndSaveAResultThatPlots) {
  const auto dir = make_temp_dir("tandem-bench-result");
  CommandResult r = bench("--model '" + model_dir() +
                          "' --request-rate 50 --burstiness 2"
                          " --metric-percentiles 50,99 --save-result --result-dir '" +
                          dir.string() + "' --result-filename r.json --metadata machine=ci");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out,
              HasSubstr("Traffic request rate: 50.0\nBurstiness factor: 2.0 (Gamma distribution)"));
  EXPECT_THAT(r.out, HasSubstr("Successful requests:                     4         \n"));
  EXPECT_THAT(r.out, HasSubstr("Failed requests:                         0         \n"));
  // The server adds BOS to each 31-token prompt: 4 x 32 input tokens; ignore_eos: 4 x 8 out.
  EXPECT_THAT(r.out, HasSubstr("Total input tokens:                      128       \n"));
  EXPECT_THAT(r.out, HasSubstr("Total generated tokens:                  32        \n"));
  for (const char* label : {"Mean TTFT (ms):", "P50 TTFT (ms):", "P99 TPOT (ms):",
                            "Median ITL (ms):", "Mean E2EL (ms):"}) {
    EXPECT_THAT(r.out, HasSubstr(label));
  }
  const nlohmann::json j = read_json_file(dir / "r.json");
  EXPECT_EQ(j["completed"], 4);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["total_output_tokens"], 32);
  EXPECT_EQ(j["machine"], "ci");
  EXPECT_EQ(j["model_id"], model_dir());
  ASSERT_EQ(j["requests"].size(), 4u);
  for (const auto& rec : j["requests"]) {
    EXPECT_EQ(rec["output_tokens"], 8);
    EXPECT_GT(rec["ttft"].get<double>(), 0);
    EXPECT_EQ(rec["itl"].size(), 7u);  // one chunk per token after the first
  }
  CommandResult plot = run_tandem("bench plot '" + (dir / "r.json").string() + "'");
  ASSERT_EQ(plot.exit_code, 0) << plot.err;
  const std::string svg = read_text_file(dir / "r.svg");
  EXPECT_THAT(svg, HasSubstr("<svg"));
  EXPECT_THAT(svg, HasSubstr("Per-request timeline"));
}

TEST_F(BenchServeE2E, ChatCompletionsAndTheModelFromTheServer) {
  // No --model: the first model of /v1/models (its root is the directory, the tokenizer's).
  CommandResult r = bench("--endpoint /v1/chat/completions");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("First model name: " + model_dir()));
  EXPECT_THAT(r.out, HasSubstr("Successful requests:                     4         \n"));
  EXPECT_THAT(r.out, HasSubstr("Total generated tokens:                  32        \n"));
}

TEST_F(BenchServeE2E, AFailingEndpointIsCountedWithItsErrors) {
  CommandResult r = bench("--model '" + model_dir() + "' --endpoint /v1/missing/completions");
  EXPECT_EQ(r.exit_code, 1);  // nothing succeeded
  EXPECT_THAT(r.out, HasSubstr("Failed requests during benchmark run detected (capping to 10):"));
  EXPECT_THAT(r.out, HasSubstr("Error 0: HTTP 404"));
  EXPECT_THAT(r.out, HasSubstr("Successful requests:                     0         \n"));
  EXPECT_THAT(r.out, HasSubstr("Failed requests:                         4         \n"));
}

TEST(BenchServeCli, BadFlagsNameTheFlag) {
  const std::string m = " --model '" + model_dir() + "'";
  CommandResult r = run_tandem("bench serve --request-rate fast" + m);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--request-rate: 'fast' is not a number"));
  r = run_tandem("bench serve --endpoint /v1/embeddings" + m);
  EXPECT_THAT(r.err, HasSubstr("--endpoint '/v1/embeddings' must end with"));
  r = run_tandem("bench serve --dataset-name sharegpt" + m);
  EXPECT_THAT(r.err, HasSubstr("--dataset-name 'sharegpt' is not supported"));
  r = run_tandem("bench serve --base-url https://example.com" + m);
  EXPECT_THAT(r.err, HasSubstr("https is not supported"));
  r = run_tandem("bench serve --percentile-metrics ttft,goodput" + m);
  EXPECT_THAT(r.err, HasSubstr("'goodput' is not one of"));
  r = run_tandem("bench serve --max-concurrency 0" + m);
  EXPECT_THAT(r.err, HasSubstr("--max-concurrency must be greater than 0"));
  r = run_tandem("bench serve --model /nonexistent");
  EXPECT_THAT(r.err, HasSubstr("no tokenizer.json in '/nonexistent'"));
  r = run_tandem("bench serve --no-such-flag");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--no-such-flag"));
  r = run_tandem("bench plot /nonexistent.json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent.json"));
  r = run_tandem("bench serve --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--base-url", "--endpoint", "--random-input-len", "--random-prefix-len",
                           "--request-rate", "--burstiness", "--max-concurrency", "--ignore-eos",
                           "--percentile-metrics", "--metric-percentiles", "--save-result",
                           "--result-dir", "--result-filename", "--disable-tqdm"}) {
    EXPECT_THAT(r.out, HasSubstr(flag));
  }
  r = run_tandem("bench");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, Not(HasSubstr("Segmentation")));
}

}  // namespace
}  // namespace tandem::test
