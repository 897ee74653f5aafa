// `tandem bench serve [options]`: the serving benchmark, with `vllm bench serve`'s flags and
// semantics (random dataset, Poisson/gamma arrivals, streamed requests, the same printed block
// and --save-result JSON). `tandem bench plot RESULT.json [-o OUT.svg]`: an SVG picture of a
// saved result (per-request timeline, TTFT and ITL distributions). `tandem bench compare A.json
// B.json [--names A B]`: two results side by side with ratios.
#include <fmt/format.h>
#include <httplib.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "command_line.h"
#include "bench/arrival_schedule.h"
#include "bench/benchmark_runner.h"
#include "bench/http_url.h"
#include "bench/metrics.h"
#include "bench/random_dataset.h"
#include "bench/report.h"
#include "bench/request_body.h"
#include "bench/result_comparison.h"
#include "bench/svg_plot.h"
#include "commands.h"
#include "core/error.h"
#include "core/json_file.h"
#include "tokenizer/tokenizer.h"

namespace tandem::apps {
namespace {

using namespace tandem::bench;
namespace fs = std::filesystem;

struct BenchServeOptions {
  std::optional<std::string> backend;
  std::optional<std::string> base_url;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string endpoint = "/v1/completions";
  std::vector<std::string> headers;  // KEY=VALUE
  std::optional<std::string> model;
  std::optional<std::string> served_model_name;
  std::optional<std::string> tokenizer;
  std::string dataset_name = "random";
  RandomDatasetParams dataset;
  std::optional<int> input_len, output_len;  // --input-len / --output-len (general aliases)
  std::string request_rate = "inf";
  double burstiness = 1.0;
  std::optional<int> max_concurrency;
  bool ignore_eos = false;
  std::string percentile_metrics = "ttft,tpot,itl,e2el";
  std::string metric_percentiles = "99";
  bool save_result = false, save_detailed = false, disable_tqdm = false;
  std::optional<std::string> result_dir, result_filename, label;
  std::vector<std::string> metadata;  // KEY=VALUE
  std::optional<double> temperature, top_p, min_p, frequency_penalty, presence_penalty,
      repetition_penalty;
  std::optional<int> top_k;
};

void add_serve_options(CLI::App& app, BenchServeOptions& o) {
  app.add_option("--backend", o.backend,
                 "openai (completions) or openai-chat; default from --endpoint");
  app.add_option("--base-url", o.base_url,
                 "server URL, e.g. http://host:8000 (instead of --host/--port)");
  app.add_option("--host", o.host, "server host (default 127.0.0.1)");
  app.add_option("--port", o.port, "server port (default 8000)")->check(CLI::Range(1, 65535));
  app.add_option("--endpoint", o.endpoint, "/v1/completions (default) or /v1/chat/completions");
  app.add_option("--header", o.headers, "extra request headers, KEY=VALUE ...");
  app.add_option("--model", o.model, "model id (default: the first of the server's /v1/models)");
  app.add_option("--served-model-name", o.served_model_name,
                 "the model name sent in requests (default --model)");
  app.add_option("--tokenizer", o.tokenizer,
                 "model directory whose tokenizer builds the prompts (default --model)");
  app.add_option("--dataset-name", o.dataset_name, "only 'random' is supported");
  app.add_option("--random-input-len", o.dataset.input_len, "prompt tokens (default 1024)");
  app.add_option("--random-output-len", o.dataset.output_len,
                 "max tokens to generate (default 128)");
  app.add_option("--random-range-ratio", o.dataset.range_ratio,
                 "lengths vary by +-ratio, in [0, 1) (default 0)");
  app.add_option("--random-prefix-len", o.dataset.prefix_len,
                 "tokens of a random prefix shared by all prompts (default 0)");
  app.add_option("--input-len", o.input_len, "alias of --random-input-len");
  app.add_option("--output-len", o.output_len, "alias of --random-output-len");
  app.add_option("--num-prompts", o.dataset.num_prompts, "requests to send (default 1000)");
  app.add_option("--request-rate", o.request_rate,
                 "requests per second, or inf to send all at once (default inf)");
  app.add_option("--burstiness", o.burstiness,
                 "gamma shape of the gaps: 1 = Poisson, <1 burstier, >1 more even (default 1)");
  app.add_option("--max-concurrency", o.max_concurrency, "requests in flight at most");
  app.add_flag("--ignore-eos", o.ignore_eos,
               "send ignore_eos so every request generates its full length");
  app.add_option("--seed", o.dataset.seed, "seed of the prompts and arrival times (default 0)");
  app.add_option("--percentile-metrics", o.percentile_metrics,
                 "of ttft,tpot,itl,e2el (default all four)");
  app.add_option("--metric-percentiles", o.metric_percentiles,
                 "comma-separated percentiles (default 99)");
  app.add_flag("--save-result", o.save_result, "write the result JSON");
  app.add_flag("--save-detailed", o.save_detailed,
               "also write vLLM's per-request arrays (texts, ttfts, itls, ...)");
  app.add_option("--result-dir", o.result_dir, "directory of the result JSON (default .)");
  app.add_option("--result-filename", o.result_filename, "file name of the result JSON");
  app.add_option("--label", o.label,
                 "label (file name prefix) of the result (default the backend)");
  app.add_option("--metadata", o.metadata, "KEY=VALUE pairs stored in the result JSON");
  app.add_flag("--disable-tqdm", o.disable_tqdm, "no progress bar");
  app.add_option("--temperature", o.temperature, "sampling temperature sent with every request");
  app.add_option("--top-p", o.top_p, "top_p sent with every request");
  app.add_option("--top-k", o.top_k, "top_k sent with every request");
  app.add_option("--min-p", o.min_p, "min_p sent with every request");
  app.add_option("--frequency-penalty", o.frequency_penalty,
                 "frequency_penalty sent with every request");
  app.add_option("--presence-penalty", o.presence_penalty,
                 "presence_penalty sent with every request");
  app.add_option("--repetition-penalty", o.repetition_penalty,
                 "repetition_penalty sent with every request");
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    const size_t comma = text.find(',', pos);
    parts.push_back(text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos) return parts;
    pos = comma + 1;
  }
}

double parse_double(const std::string& text, const char* flag) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  TANDEM_CHECK(used == text.size() && !text.empty(), "{}: '{}' is not a number", flag, text);
  return v;
}

std::pair<std::string, std::string> key_value(const std::string& item, const char* flag) {
  const size_t eq = item.find('=');
  TANDEM_CHECK(eq != std::string::npos && eq > 0, "{}: '{}' is not KEY=VALUE", flag, item);
  return {item.substr(0, eq), item.substr(eq + 1)};
}

// The first model the server lists: (id, root).
std::pair<std::string, std::string> first_served_model(const HttpUrl& base,
                                                       const HttpHeaders& headers) {
  httplib::Client client(base.host, std::stoi(base.port));
  client.set_connection_timeout(10);
  httplib::Headers h;
  for (const auto& [k, v] : headers) h.emplace(k, v);
  const std::string path = (base.target == "/" ? "" : base.target) + "/v1/models";
  auto res = client.Get(path, h);
  TANDEM_CHECK(res, "cannot fetch models from {}{}: {} (is the server running? or pass --model)",
               base.str(), "/v1/models", httplib::to_string(res.error()));
  TANDEM_CHECK(res->status == 200, "{}/v1/models answered HTTP {}: {}", base.str(), res->status,
               res->body.substr(0, 500));
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  TANDEM_CHECK(j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() &&
                   j["data"][0].contains("id"),
               "{}/v1/models lists no models", base.str());
  const auto& m = j["data"][0];
  std::string id = m["id"].get<std::string>();
  std::string root =
      m.contains("root") && m["root"].is_string() ? m["root"].get<std::string>() : id;
  return {id, root};
}

// Thousands of concurrent streams need as many sockets: raise the soft open-files limit to the
// hard one (a failed connect is still reported per request if that is not enough).
void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

std::string local_date() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

int run_serve(BenchServeOptions& o) {
  TANDEM_CHECK(o.dataset_name == "random", "--dataset-name '{}' is not supported (only 'random')",
               o.dataset_name);
  if (o.input_len) o.dataset.input_len = *o.input_len;
  if (o.output_len) o.dataset.output_len = *o.output_len;
  const ApiKind api = api_kind_for_endpoint(o.endpoint);
  const std::string backend = api == ApiKind::kChatCompletions ? "openai-chat" : "openai";
  if (o.backend) {
    TANDEM_CHECK(*o.backend == backend || (*o.backend == "vllm" && backend == "openai"),
                 "--backend {} does not speak --endpoint {} (use --backend {})", *o.backend,
                 o.endpoint, backend);
  }
  const double request_rate = parse_double(o.request_rate, "--request-rate");
  TANDEM_CHECK(!o.max_concurrency || *o.max_concurrency > 0,
               "--max-concurrency must be greater than 0, got {}", *o.max_concurrency);

  ReportConfig config;
  config.backend = o.backend.value_or(backend);
  config.label = o.label;
  config.num_prompts = o.dataset.num_prompts;
  config.request_rate = request_rate;
  config.burstiness = o.burstiness;
  config.max_concurrency = o.max_concurrency;
  config.percentile_metrics = split_commas(o.percentile_metrics);
  for (const auto& m : config.percentile_metrics) {
    TANDEM_CHECK(std::find(kPercentileMetricNames.begin(), kPercentileMetricNames.end(), m) !=
                     kPercentileMetricNames.end(),
                 "--percentile-metrics: '{}' is not one of ttft, tpot, itl, e2el", m);
  }
  config.percentiles.clear();
  for (const auto& p : split_commas(o.metric_percentiles)) {
    const double v = parse_double(p, "--metric-percentiles");
    TANDEM_CHECK(v >= 0 && v <= 100, "--metric-percentiles: {} is not in [0, 100]", p);
    config.percentiles.push_back(v);
  }
  for (const auto& item : o.metadata) config.metadata.insert(key_value(item, "--metadata"));
  config.detail = o.save_detailed ? ResultDetail::kDetailed : ResultDetail::kSummary;

  const HttpUrl base = parse_http_url(o.base_url.value_or(
      fmt::format("http://{}:{}",
                  o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host, o.port)));
  HttpUrl api_url = base;
  api_url.target = (base.target == "/" ? "" : base.target) + o.endpoint;
  HttpHeaders headers;
  if (const char* key = std::getenv("OPENAI_API_KEY"); key && *key) {
    headers.emplace_back("Authorization", fmt::format("Bearer {}", key));
  }
  for (const auto& item : o.headers) headers.push_back(key_value(item, "--header"));

  std::string model_id, model_name;
  if (o.model) {
    model_id = *o.model;
    model_name = o.served_model_name.value_or(model_id);
  } else {
    std::printf("Model not specified, fetching first model from server...\n");
    auto [id, root] = first_served_model(base, headers);
    model_name = o.served_model_name.value_or(id);
    model_id = root;
    std::printf("First model name: %s, first model id: %s\n", id.c_str(), root.c_str());
  }
  const std::string tokenizer_id = o.tokenizer.value_or(model_id);
  TANDEM_CHECK(fs::exists(fs::path(tokenizer_id) / "tokenizer.json"),
               "no tokenizer.json in '{}': pass --tokenizer with a model directory", tokenizer_id);
  const Tokenizer tokenizer = Tokenizer::load(tokenizer_id);
  config.model_id = model_id;
  config.tokenizer_id = tokenizer_id;

  const RandomDataset dataset = build_random_dataset(tokenizer, o.dataset);
  RequestBodyOptions body_options{model_name, o.ignore_eos, nlohmann::json::object()};
  auto& extra = body_options.extra_body;
  if (o.temperature) extra["temperature"] = *o.temperature;
  if (o.top_p) extra["top_p"] = *o.top_p;
  if (o.top_k) extra["top_k"] = *o.top_k;
  if (o.min_p) extra["min_p"] = *o.min_p;
  if (o.frequency_penalty) extra["frequency_penalty"] = *o.frequency_penalty;
  if (o.presence_penalty) extra["presence_penalty"] = *o.presence_penalty;
  if (o.repetition_penalty) extra["repetition_penalty"] = *o.repetition_penalty;

  BenchmarkPlan plan;
  plan.api_url = api_url;
  plan.api = api;
  plan.headers = headers;
  for (const SampleRequest& r : dataset.requests) {
    plan.bodies.push_back(build_request_body(api, r, body_options));
    plan.prompt_lens.push_back(r.prompt_len);
  }
  // The arrival process has its own stream, so adding prompts never shifts the schedule.
  plan.arrivals = arrival_offsets(
      o.dataset.num_prompts, {request_rate, o.burstiness, o.dataset.seed ^ 0x9e3779b97f4a7c15ULL});
  plan.max_concurrency = o.max_concurrency;
  plan.progress = o.disable_tqdm ? ProgressDisplay::kHidden : ProgressDisplay::kShown;

  raise_open_file_limit();
  std::printf("Starting main benchmark run...\n%s", format_traffic(config).c_str());
  std::fflush(stdout);
  const BenchmarkRun run = run_benchmark(plan);
  config.date = local_date();
  const BenchmarkMetrics metrics = compute_metrics(
      run.outputs, run.duration_s, config.percentiles,
      [&](const std::string& text) { return int(tokenizer.encode(text, false).size()); });
  std::printf("%s%s", format_failures(run.outputs).c_str(),
              format_result_block(metrics, run.duration_s, config).c_str());
  std::fflush(stdout);

  if (o.save_result) {
    std::string file = o.result_filename.value_or(fmt::format(
        "{}-{}qps{}-{}-{}.json", config.label.value_or(config.backend), python_float(request_rate),
        o.max_concurrency ? fmt::format("-concurrency{}", *o.max_concurrency) : "",
        fs::path(model_id).filename().string(), config.date));
    fs::path path = file;
    if (o.result_dir) {
      fs::create_directories(*o.result_dir);
      path = fs::path(*o.result_dir) / file;
    }
    std::ofstream out(path);
    TANDEM_CHECK(out.good(), "cannot write the result to {}", path.string());
    out << result_json(metrics, run.outputs, run.duration_s, config).dump(2) << "\n";
    TANDEM_CHECK(out.good(), "cannot write the result to {}", path.string());
    std::printf("Result saved to %s\n", path.string().c_str());
  }
  return metrics.completed > 0 ? 0 : 1;
}

int run_plot(const std::string& input, std::optional<std::string> output) {
  const nlohmann::json result = read_json_file(input);
  const std::string svg = render_result_svg(result);
  const fs::path out = output ? fs::path(*output) : fs::path(input).replace_extension(".svg");
  std::ofstream file(out);
  TANDEM_CHECK(file.good(), "cannot write {}", out.string());
  file << svg;
  TANDEM_CHECK(file.good(), "cannot write {}", out.string());
  std::printf("wrote %s\n", out.string().c_str());
  return 0;
}

int run_compare(const std::vector<std::string>& files, const std::vector<std::string>& names) {
  TANDEM_CHECK(names.empty() || names.size() == 2, "--names takes two names, got {}", names.size());
  auto name = [&](size_t i) {
    return names.empty() ? fs::path(files[i]).stem().string() : names[i];
  };
  std::printf(
      "%s", format_comparison(read_json_file(files[0]), name(0), read_json_file(files[1]), name(1))
                .c_str());
  return 0;
}

}  // namespace

int bench_command(int argc, char** argv) {
  CLI::App app{"Benchmark a serving endpoint (`serve`) or plot a saved result (`plot`).", argv[0]};
  app.require_subcommand(1);
  BenchServeOptions serve_options;
  CLI::App* serve =
      app.add_subcommand("serve", "run the online serving benchmark (as `vllm bench serve`)");
  add_serve_options(*serve, serve_options);
  std::string plot_input;
  std::optional<std::string> plot_output;
  CLI::App* plot = app.add_subcommand("plot", "draw a --save-result JSON as an SVG");
  plot->add_option("result", plot_input, "the result JSON")->required();
  plot->add_option("-o,--output", plot_output, "the SVG to write (default RESULT.svg)");
  std::vector<std::string> compare_files, compare_names;
  CLI::App* compare =
      app.add_subcommand("compare", "print two result JSONs side by side with ratios");
  compare->add_option("results", compare_files, "BASELINE.json OTHER.json")
      ->required()
      ->expected(2);
  compare->add_option("--names", compare_names, "column names (default the file names)");
  if (std::optional<int> exit_code = parse_command_line(app, argc, argv)) return *exit_code;
  if (serve->parsed()) return run_serve(serve_options);
  if (compare->parsed()) return run_compare(compare_files, compare_names);
  return run_plot(plot_input, plot_output);
}

}  // namespace tandem::apps
