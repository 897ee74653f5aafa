// `tandem proxy [options]`: the disaggregated-prefill proxy with the reference proxy's flags
// (LMCache's disagg_proxy_server.py) and defaults of the 1p1d example. Serves until
// SIGINT/SIGTERM, then stops: open client connections and upstream calls are closed.
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <string>

#include "command_line.h"
#include "commands.h"
#include "core/error.h"
#include "core/heap_trimmer.h"
#include "core/logging.h"
#include "proxy/proxy_server.h"

namespace tandem::apps {
namespace {

// The raw flag values; lists stay strings until build_proxy_config.
struct ProxyFlags {
  ProxyArgs args;
  std::string prefiller_hosts = "localhost", prefiller_ports = "7100";
  std::string decoder_hosts = "localhost", decoder_ports = "7200";
  std::string decoder_init_ports = "7300", decoder_alloc_ports = "7400";
  int num_prefillers = 1, num_decoders = 1;
};

void add_options(CLI::App& app, ProxyFlags& f) {
  ProxyArgs& a = f.args;
  app.add_option("--host", a.host, "address the proxy listens on")->capture_default_str();
  app.add_option("--port", a.port, "port the proxy listens on (0: any free port)")
      ->capture_default_str();
  app.add_option("--prefiller-host", f.prefiller_hosts, "prefiller host(s), comma-separated")
      ->capture_default_str();
  app.add_option("--prefiller-port", f.prefiller_ports,
                 "prefiller port(s), comma-separated; one port with --num-prefillers N: N "
                 "consecutive ports")
      ->capture_default_str();
  app.add_option("--num-prefillers", f.num_prefillers, "number of prefillers")
      ->capture_default_str();
  app.add_option("--decoder-host", f.decoder_hosts, "decoder host(s), comma-separated")
      ->capture_default_str();
  app.add_option("--decoder-port", f.decoder_ports, "decoder port(s), comma-separated")
      ->capture_default_str();
  app.add_option("--decoder-init-port", f.decoder_init_ports,
                 "decoder KV receiver init port(s): one, or one per decoder")
      ->capture_default_str();
  app.add_option("--decoder-alloc-port", f.decoder_alloc_ports,
                 "decoder KV receiver alloc port(s): one, or one per decoder")
      ->capture_default_str();
  app.add_option("--num-decoders", f.num_decoders, "number of decoders")->capture_default_str();
  app.add_option("--proxy-host", a.proxy_host,
                 "address of the KV-transfer notification listener (pd_proxy_host)")
      ->capture_default_str();
  app.add_option("--proxy-port", a.proxy_port, "its port (pd_proxy_port; 0: any free port)")
      ->capture_default_str();
  app.add_option("--routing", a.routing, "round-robin or least-loaded")->capture_default_str();
  app.add_option("--prefill-timeout", a.prefill_timeout_s, "seconds for a prefiller's answer")
      ->capture_default_str();
  app.add_option("--transfer-timeout", a.transfer_timeout_s,
                 "seconds from the prefiller's answer to its TransferDone")
      ->capture_default_str();
  app.add_option("--decode-timeout", a.decode_timeout_s,
                 "seconds a decoder may stay silent (before its answer or between chunks)")
      ->capture_default_str();
  app.add_option("--api-key", a.api_key,
                 "require 'Authorization: Bearer KEY' from clients, and send it to the engines");
  app.add_option("--engine-api-key", a.engine_api_key,
                 "send this key to the engines instead of --api-key");
  app.add_option("--threads", a.threads, "I/O threads")->capture_default_str();
  app.add_option("--stats-interval", a.stats_interval_s, "seconds between TTFT stats blocks")
      ->capture_default_str();
  app.add_option("--health-check-interval", a.health_check_interval_s,
                 "seconds between GET /health probes of every engine (0: none)")
      ->capture_default_str();
  app.add_option("--health-check-timeout", a.health_check_timeout_s,
                 "seconds an engine has to answer a probe before it gets no new requests")
      ->capture_default_str();
}

ProxyArgs resolve_lists(const CLI::App& app, ProxyFlags& f) {
  ProxyArgs a = f.args;
  a.prefiller_hosts = split_csv(f.prefiller_hosts, "--prefiller-host");
  a.prefiller_ports = parse_port_list(f.prefiller_ports, "--prefiller-port");
  a.decoder_hosts = split_csv(f.decoder_hosts, "--decoder-host");
  a.decoder_ports = parse_port_list(f.decoder_ports, "--decoder-port");
  a.decoder_init_ports = parse_port_list(f.decoder_init_ports, "--decoder-init-port");
  a.decoder_alloc_ports = parse_port_list(f.decoder_alloc_ports, "--decoder-alloc-port");
  if (app.count("--num-prefillers")) a.num_prefillers = f.num_prefillers;
  if (app.count("--num-decoders")) a.num_decoders = f.num_decoders;
  return a;
}

}  // namespace

int proxy_command(int argc, char** argv) {
  CLI::App app{"Disaggregated-prefill proxy: one OpenAI endpoint over prefillers and decoders.",
               argv[0]};
  ProxyFlags flags;
  add_options(app, flags);
  if (std::optional<int> exit_code = parse_command_line(app, argc, argv)) return *exit_code;
  ProxyConfig config = build_proxy_config(resolve_lists(app, flags));

  // SIGINT/SIGTERM are blocked in every thread and taken by sigwait below.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  ProxyServer server(config);
  server.start();
  HeapTrimmer heap_trimmer("proxy");
  for (const auto& p : config.prefillers) log_info("prefiller http://{}:{}", p.host, p.port);
  for (const auto& d : config.decoders) {
    log_info("decoder http://{}:{} (KV receiver init port {}, alloc port {})", d.http.host,
             d.http.port, d.init_port, d.alloc_port);
  }
  log_info("KV-transfer notifications on {}:{} (UCX)", config.notify_host, server.notify_port());
  log_info("proxy ({}, {} I/O threads) serving on http://{}:{}",
           routing_policy_name(config.routing), config.threads, config.host, server.port());
  log_info("TTFT stats every {} s: count and average over every request, median and 99th "
           "percentile over the most recent {} requests of each stage",
           std::chrono::duration<double>(config.stats_interval).count(), TtftStats::kDefaultWindow);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  log_info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server.stop();
  log_info("stopped");
  return 0;
}

}  // namespace tandem::apps
