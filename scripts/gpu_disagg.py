"""On the GPU machine: the 1p1d system on CUDA — `tandem proxy` + a prefiller + a decoder, both
`tandem serve --device cuda` with pd_buffer_device cuda, so the prompt KV moves GPU to GPU by CUDA
IPC — checked against one CUDA server, and benchmarked.

  gpu_disagg.py check TANDEM MODEL OUT_JSON [--ids N,LEN] [--prefiller-gpu G] [--decoder-gpu G]
      Greedy completions of the same prompts through 1p1d and through one `tandem serve`: every
      answer must be equal, and the decoder must have loaded the prompts' KV (computed none of it:
      it starts from the prefiller's token).
      Without --ids: 16 text prompts of 1 to ~300 tokens; with --ids N,LEN: N random token-id
      prompts of LEN tokens.
  gpu_disagg.py bench TANDEM MODEL OUT_DIR TAG [--single] [--prefiller-gpu G] [--decoder-gpu G]
                     [--ids N,LEN] [--num-prompts N] [--request-rate R] [--burstiness B]
      The reference workload (random 7500 in / 200 out, 30 prompts, 1 req/s, burstiness 100,
      ignore-eos; the last three as given) with `tandem bench serve` against 1p1d (or --single: one `tandem serve`), saved
      as OUT_DIR/TAG.json, with the KV transfer times of the run in OUT_DIR/TAG-transfer.json.
      With --ids, first the greedy answers to those prompts go to OUT_DIR/TAG-answers.json.
  gpu_disagg.py compare A-answers.json B-answers.json OUT_JSON
      Whether two runs' greedy answers are equal (1p1d against one server, same servers as the
      benchmark: no extra model loads).
Exits 1 when a check fails or a server dies. Logs go to OUT_DIR (check: beside OUT_JSON)."""
import argparse, datetime, json, os, random, re, signal, socket, statistics, subprocess, sys
import time, urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "examples/disagg_prefill/1p1d/configs")
if not os.path.isdir(CONFIGS):  # the copy in .gpu/ runs from the checkout one level up
    CONFIGS = os.path.join(os.path.dirname(REPO), "examples/disagg_prefill/1p1d/configs")
PRODUCER = ('{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_producer",'
            '"kv_connector_extra_config":{"discard_partial_chunks":false}}')
CONSUMER = ('{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_consumer",'
            '"kv_connector_extra_config":{"discard_partial_chunks":false,"skip_last_n_tokens":1}}')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class System:
    """Servers started for one run; stop() ends them all (also on errors)."""

    def __init__(self, tandem, model, log_dir):
        self.tandem, self.model, self.log_dir, self.procs = tandem, model, log_dir, []

    def start(self, name, args, env=None):
        log = open(os.path.join(self.log_dir, f"{name}.log"), "w")
        p = subprocess.Popen([self.tandem] + args, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, **(env or {})}, start_new_session=True)
        self.procs.append((name, p))
        return p

    def wait_healthy(self, name, port, timeout=600):
        p = dict(self.procs)[name]
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                return
            except OSError:
                if p.poll() is not None:
                    raise SystemExit(f"{name} exited ({p.returncode}):\n" + self.log_tail(name))
                time.sleep(0.3)
        raise SystemExit(f"{name} not healthy within {timeout} s:\n" + self.log_tail(name))

    def log_tail(self, name):
        with open(os.path.join(self.log_dir, f"{name}.log")) as f:
            return f.read()[-3000:]

    def serve(self, name, gpu, port, utilization, extra, env=None):
        self.start(name, ["serve", self.model, "--host", "127.0.0.1", "--port", str(port),
                          "--device", "cuda", "--cuda-device", str(gpu), "--disable-log-requests",
                          "--no-enable-prefix-caching", "--max-num-batched-tokens", "8192",
                          "--gpu-memory-utilization", str(utilization)] + extra, env)
        self.wait_healthy(name, port)

    def single(self, gpu):
        port = free_port()
        self.serve("single", gpu, port, 0.9, [])
        return port

    def disagg(self, prefiller_gpu, decoder_gpu):
        """Starts prefiller, decoder and proxy; returns the proxy's and the engines' ports."""
        ports = {k: free_port() for k in ("prefiller", "decoder", "init", "alloc", "proxy",
                                          "notify")}
        env = {"UCX_CM_REUSEADDR": "y", "LMCACHE_PD_PEER_INIT_PORT": str(ports["init"]),
               "LMCACHE_PD_PEER_ALLOC_PORT": str(ports["alloc"]),
               "LMCACHE_PD_PROXY_PORT": str(ports["notify"])}
        shared = prefiller_gpu == decoder_gpu  # one GPU: the prefiller keeps to a share of it
        self.serve("prefiller", prefiller_gpu, ports["prefiller"], 0.4 if shared else 0.85,
                   ["--kv-transfer-config", PRODUCER],
                   {**env, "LMCACHE_CONFIG_FILE": f"{CONFIGS}/lmcache-prefiller-config.yaml"})
        self.serve("decoder", decoder_gpu, ports["decoder"], 0.85,
                   ["--kv-transfer-config", CONSUMER],
                   {**env, "LMCACHE_CONFIG_FILE": f"{CONFIGS}/lmcache-decoder-config.yaml"})
        self.start("proxy", ["proxy", "--host", "127.0.0.1", "--port", str(ports["proxy"]),
                             "--prefiller-host", "127.0.0.1", "--prefiller-port",
                             str(ports["prefiller"]), "--decoder-host", "127.0.0.1",
                             "--decoder-port", str(ports["decoder"]), "--decoder-init-port",
                             str(ports["init"]), "--decoder-alloc-port", str(ports["alloc"]),
                             "--proxy-host", "127.0.0.1", "--proxy-port", str(ports["notify"])])
        self.wait_healthy("proxy", ports["proxy"], 60)
        return ports

    def stop(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for name, p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def metrics(port):
    """Prometheus text -> {name: value summed over labels}."""
    out = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            m = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? ([-\d.e+]+|NaN)$", line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(3))
    return out


def proxy_stages_ms(port):
    """The proxy's mean latency of each stage of a request (queue, prefill, transfer,
    decode_first_token), from its tandem:proxy_stage_latency_seconds histogram, in ms."""
    sums, counts = {}, {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            m = re.match(r'^tandem:proxy_stage_latency_seconds_(sum|count)\{stage="(\w+)"\} '
                         r'([-\d.e+]+)$', line)
            if m:
                (sums if m.group(1) == "sum" else counts)[m.group(2)] = float(m.group(3))
    return {k: round(1e3 * v / counts[k], 3) for k, v in sums.items() if counts.get(k)}


def complete(port, model, prompt, max_tokens):
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens,
                       "temperature": 0, "ignore_eos": True}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.load(r)["choices"][0]["text"]


def transfer_times(log_path):
    """The prefiller's per-transfer log lines: (total ms, writing ms, bytes)."""
    pattern = re.compile(r"kv sender: \S+ done: \d+ chunks, (\d+) bytes in ([\d.]+) ms "
                         r"\(([\d.]+) ms writing")
    rows = []
    with open(log_path) as f:
        for line in f:
            m = pattern.search(line)
            if m:
                rows.append((float(m.group(2)), float(m.group(3)), int(m.group(1))))
    return rows


def summarize_transfers(rows):
    if not rows:
        return {"count": 0}
    total, write, size = zip(*rows)
    return {"count": len(rows), "bytes_per_transfer_mean": statistics.mean(size),
            "total_ms": {"mean": statistics.mean(total), "median": statistics.median(total),
                         "min": min(total), "max": max(total)},
            "write_ms": {"mean": statistics.mean(write), "median": statistics.median(write),
                         "min": min(write), "max": max(write)},
            "write_bandwidth_gb_s_median": statistics.median(
                s / (w * 1e6) for s, w in zip(size, write) if w > 0)}


def gpu_names():
    r = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                       capture_output=True, text=True)
    return [n.strip() for n in r.stdout.splitlines() if n.strip()]


def check_prompts(ids):
    if ids:
        n, length = (int(x) for x in ids.split(","))
        rng = random.Random(0)
        return [[rng.randrange(1000, 100000) for _ in range(max(1, length - 977 * i))]
                for i in range(n)]
    words = ["Once upon a time", "The dog", "A little girl", "Tom and Sue", "One day"]
    return [" ".join([words[i % 5]] + ["and then they played"] * (i * 4)) for i in range(16)]


def check(a):
    log_dir = os.path.dirname(os.path.abspath(a.out))
    prompts = check_prompts(a.ids)
    tag = os.path.splitext(os.path.basename(a.out))[0]
    single = System(a.tandem, a.model, log_dir)
    try:
        port = single.single(a.decoder_gpu)
        alone = [complete(port, a.model, p, a.max_tokens) for p in prompts]
    finally:
        single.stop()
    os.replace(os.path.join(log_dir, "single.log"), os.path.join(log_dir, f"{tag}-single.log"))
    disagg = System(a.tandem, a.model, log_dir)
    try:
        ports = disagg.disagg(a.prefiller_gpu, a.decoder_gpu)
        through = [complete(ports["proxy"], a.model, p, a.max_tokens) for p in prompts]
        dm, pm = metrics(ports["decoder"]), metrics(ports["prefiller"])
    finally:
        disagg.stop()
    for name in ("prefiller", "decoder", "proxy"):
        os.replace(os.path.join(log_dir, f"{name}.log"), os.path.join(log_dir, f"{tag}-{name}.log"))
    same = sum(x == y for x, y in zip(alone, through))
    received = dm.get("tandem:pd_prompt_tokens_received_total", 0)
    computed = dm.get("tandem:pd_prompt_tokens_computed_total", 0)
    result = {"model": a.model, "gpus": gpu_names(), "prefiller_gpu": a.prefiller_gpu,
              "decoder_gpu": a.decoder_gpu, "prompts": len(prompts),
              "equal_greedy_completions": same, "max_tokens": a.max_tokens,
              "decoder_prompt_tokens_received": received,
              "decoder_prompt_tokens_computed": computed,
              "transfers_sent": pm.get("tandem:pd_transfers_sent_total", 0),
              "transfer_failures": pm.get("tandem:pd_transfer_failures_total", 0),
              "transfers": summarize_transfers(transfer_times(
                  os.path.join(log_dir, f"{tag}-prefiller.log"))),
              "mismatches": [{"prompt": i, "single": x, "disagg": y}
                             for i, (x, y) in enumerate(zip(alone, through)) if x != y][:4]}
    json.dump(result, open(a.out, "w"), indent=1)
    print(f"1p1d on CUDA ({os.path.basename(a.model)}, GPU {a.prefiller_gpu} -> "
          f"{a.decoder_gpu}): {same} of {len(prompts)} greedy completions equal one CUDA "
          f"server's; decoder loaded {received:.0f} prompt tokens, computed {computed:.0f}; "
          f"transfers {result['transfers']}")
    # Each check prompt is one plain greedy completion: the decoder starts from the prefiller's
    # token and loads the whole prompt, computing none of it.
    ok = same == len(prompts) and received > 0 and computed == 0
    return 0 if ok else 1


def bench(a):
    os.makedirs(a.out, exist_ok=True)
    system = System(a.tandem, a.model, a.out)
    gpus = gpu_names()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    try:
        if a.single:
            port, layout = system.single(a.decoder_gpu), f"one tandem serve on GPU {a.decoder_gpu}"
        else:
            ports = system.disagg(a.prefiller_gpu, a.decoder_gpu)
            port = ports["proxy"]
            layout = (f"1p1d: prefiller GPU {a.prefiller_gpu}, decoder GPU {a.decoder_gpu}, "
                      "pd_buffer_device cuda (CUDA IPC)")
        if a.ids:
            answers = [complete(port, a.model, p, a.max_tokens) for p in check_prompts(a.ids)]
            extra = {}
            if not a.single:
                dm = metrics(ports["decoder"])
                extra = {k: dm.get(f"tandem:pd_prompt_tokens_{k}_total", 0)
                         for k in ("received", "computed")}
            json.dump({"layout": layout, "answers": answers, "decoder_prompt_tokens": extra},
                      open(os.path.join(a.out, f"{a.tag}-answers.json"), "w"), indent=1)
        metadata = [f"gpu={gpus[a.decoder_gpu] if gpus else 'unknown'}", f"date={date}",
                    f"layout={layout}", "flags=--max-num-batched-tokens 8192, CUDA graphs on, "
                    "no prefix caching"]
        cmd = [a.tandem, "bench", "serve", "--host", "127.0.0.1", "--port", str(port), "--model",
               a.model, "--dataset-name", "random", "--random-input-len", "7500",
               "--random-output-len", "200", "--num-prompts", str(a.num_prompts),
               "--request-rate", a.request_rate, "--burstiness", str(a.burstiness),
               "--ignore-eos", "--seed", "0",
               "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99",
               "--save-result", "--result-dir", a.out, "--result-filename", f"{a.tag}.json",
               "--label", a.tag, "--metadata"] + metadata
        with open(os.path.join(a.out, f"{a.tag}.txt"), "w") as f:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
        print(open(os.path.join(a.out, f"{a.tag}.txt")).read()[-2500:])
        if not a.single:
            pm = metrics(ports["prefiller"])
            stages = proxy_stages_ms(ports["proxy"])
            print("proxy stages (mean ms):", json.dumps(stages))
        # The engine that streams the answers: its steps against the ITL the client saw.
        em = metrics(port if a.single else ports["decoder"])
        steps = em.get("tandem:engine_steps_total", 0)
        engine = {"engine": "single" if a.single else "decoder", "steps": steps,
                  "generation_tokens": em.get("tandem:generation_tokens_total", 0),
                  "mean_step_ms": 1e3 * em.get("tandem:engine_step_seconds_total", 0) / max(steps, 1),
                  "mean_forward_ms":
                      1e3 * em.get("tandem:model_forward_seconds_total", 0) / max(steps, 1),
                  "mean_device_ms":
                      1e3 * em.get("tandem:model_device_seconds_total", 0) / max(steps, 1),
                  # as this server saw its requests (from the request's arrival at the engine)
                  "mean_ttft_ms": 1e3 * em.get("tandem:time_to_first_token_seconds_sum", 0) /
                                  max(em.get("tandem:time_to_first_token_seconds_count", 0), 1),
                  "mean_queue_ms": 1e3 * em.get("tandem:request_queue_time_seconds_sum", 0) /
                                   max(em.get("tandem:request_queue_time_seconds_count", 0), 1)}
        json.dump(engine, open(os.path.join(a.out, f"{a.tag}-engine.json"), "w"), indent=1)
        print("engine steps:", json.dumps(engine))
    finally:
        system.stop()
    for name, _ in system.procs:
        os.replace(os.path.join(a.out, f"{name}.log"), os.path.join(a.out, f"{a.tag}-{name}.log"))
    if not a.single:
        rows = transfer_times(os.path.join(a.out, f"{a.tag}-prefiller.log"))
        summary = {"gpus": gpus, "date": date, "layout": layout, "model": a.model,
                   "transfers_sent": pm.get("tandem:pd_transfers_sent_total", 0),
                   "transfer_failures": pm.get("tandem:pd_transfer_failures_total", 0),
                   "transfer_seconds_total": pm.get("tandem:pd_transfer_seconds_total", 0),
                   "write_seconds_total": pm.get("tandem:pd_transfer_write_seconds_total", 0),
                   "per_transfer": summarize_transfers(rows),
                   "proxy_stages_mean_ms": stages}
        json.dump(summary, open(os.path.join(a.out, f"{a.tag}-transfer.json"), "w"), indent=1)
        print("transfers:", json.dumps(summary["per_transfer"]))
    return rc


def compare(a):
    x, y = json.load(open(a.tandem)), json.load(open(a.model))
    same = sum(p == q for p, q in zip(x["answers"], y["answers"]))
    result = {"a": x["layout"], "b": y["layout"], "prompts": len(x["answers"]),
              "equal_greedy_completions": same, "b_decoder_prompt_tokens": y.get(
                  "decoder_prompt_tokens")}
    json.dump(result, open(a.out, "w"), indent=1)
    print(f"{same} of {len(x['answers'])} greedy answers equal: [{x['layout']}] vs "
          f"[{y['layout']}]; {result['b_decoder_prompt_tokens']}")
    return 0 if same == len(x["answers"]) else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["check", "bench", "compare"])
    p.add_argument("tandem")
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("tag", nargs="?", default="bench")
    p.add_argument("--ids")
    p.add_argument("--max-tokens", type=int, default=24)
    p.add_argument("--num-prompts", type=int, default=30)
    p.add_argument("--request-rate", default="1")  # requests per second, or inf: all at once
    p.add_argument("--burstiness", type=float, default=100)
    p.add_argument("--single", action="store_true")
    p.add_argument("--prefiller-gpu", type=int, default=0)
    p.add_argument("--decoder-gpu", type=int, default=0)
    a = p.parse_args()
    sys.exit({"check": check, "bench": bench, "compare": compare}[a.mode](a))


if __name__ == "__main__":
    main()
