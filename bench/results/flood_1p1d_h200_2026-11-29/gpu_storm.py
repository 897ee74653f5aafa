"""On the GPU machine: 1p1d on one GPU (gpu_disagg.System), then
 1. 60 streamed 7500-token requests whose clients all hang up after 8 s: the time until both
    engines are idle again (no request running or waiting, the decoder's transfer buffer empty);
 2. 5 requests after it (the system still answers, TTFT as usual);
 3. 40 requests with the prefiller killed (SIGKILL) 3 s in: how each request ends, the decoder's
    buffer back to empty, the prefiller restarted on its port, then 5 requests again.
Writes OUT_DIR/storm.json."""
import json, os, signal, socket, sys, threading, time, urllib.request
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_disagg as gd

tandem, model, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
vocab_prompt = None


def prompt_ids(i, n=7500):
    return [1000 + (i * 7919 + k * 104729) % 100000 for k in range(n)]


def raw_stream(port, i, max_tokens=200):
    s = socket.create_connection(("127.0.0.1", port))
    body = json.dumps({"model": model, "prompt": prompt_ids(i), "max_tokens": max_tokens,
                       "stream": True, "ignore_eos": True})
    s.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
    return s


def status_of(port, i, max_tokens=16, timeout=120):
    body = json.dumps({"model": model, "prompt": prompt_ids(i), "max_tokens": max_tokens,
                       "ignore_eos": True}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", body,
                                 {"Content-Type": "application/json"})
    t0 = time.time()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status, time.time() - t0
    except urllib.error.HTTPError as e:
        return e.code, time.time() - t0
    except Exception as e:  # noqa
        return str(e)[:80], time.time() - t0


def idle(ports):
    d, p = gd.metrics(ports["decoder"]), gd.metrics(ports["prefiller"])
    keys = ["tandem:num_requests_running", "tandem:num_requests_waiting"]
    return (all(d.get(k, 0) == 0 for k in keys) and all(p.get(k, 0) == 0 for k in keys)
            and d.get("tandem:pd_buffer_bytes_used", 0) == 0)


def wait_idle(ports, limit=60):
    t0 = time.time()
    while time.time() - t0 < limit:
        try:
            if idle(ports):
                return round(time.time() - t0, 2)
        except OSError:
            pass
        time.sleep(0.2)
    return None


result = {"gpus": gd.gpu_names()}


def save():
    json.dump(result, open(os.path.join(out, "storm.json"), "w"), indent=1)
system = gd.System(tandem, model, out)
try:
    ports = system.disagg(0, 0)
    # 1. the hang-up storm
    socks = [raw_stream(ports["proxy"], i) for i in range(60)]
    time.sleep(8)
    started = 0
    for s in socks:
        s.setblocking(False)
        try:
            started += 1 if s.recv(4096) else 0
        except BlockingIOError:
            pass
        s.close()
    result["storm"] = {"requests": 60, "answering_at_hang_up": started,
                       "seconds_to_idle": wait_idle(ports)}
    result["after_storm"] = [status_of(ports["proxy"], 1000 + i) for i in range(5)]
    print(json.dumps(result), flush=True)
    save()
    # 3. the prefiller killed under load
    outcomes = [None] * 40
    def one(i):
        outcomes[i] = status_of(ports["proxy"], 2000 + i, max_tokens=32, timeout=200)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    time.sleep(3)
    pre = dict(system.procs)["prefiller"]
    os.killpg(pre.pid, signal.SIGKILL)
    killed = time.time()
    for t in threads:
        t.join()
    codes = {}
    for c, _ in outcomes:
        codes[str(c)] = codes.get(str(c), 0) + 1
    result["kill"] = {"requests": 40, "outcomes": codes,
                      "last_answer_after_kill_s": round(max(t for _, t in outcomes) - 3, 2),
                      "decoder_buffer_empty_after_s": None}
    t0 = time.time()
    while time.time() - t0 < 60:
        if gd.metrics(ports["decoder"]).get("tandem:pd_buffer_bytes_used", 0) == 0:
            result["kill"]["decoder_buffer_empty_after_s"] = round(time.time() - killed, 2)
            break
        time.sleep(0.2)
    save()
    env = {"UCX_CM_REUSEADDR": "y", "LMCACHE_PD_PEER_INIT_PORT": str(ports["init"]),
           "LMCACHE_PD_PEER_ALLOC_PORT": str(ports["alloc"]),
           "LMCACHE_PD_PROXY_PORT": str(ports["notify"]),
           "LMCACHE_CONFIG_FILE": f"{gd.CONFIGS}/lmcache-prefiller-config.yaml"}
    t0 = time.time()
    # The decoder (started second, at 0.85) has filled the card to 85%: the fraction counts other
    # processes' memory (as vLLM V0's), so the restarted prefiller asks for 0.99.
    system.serve("prefiller2", 0, ports["prefiller"], 0.99, ["--kv-transfer-config", gd.PRODUCER], env)
    result["kill"]["restart_healthy_s"] = round(time.time() - t0, 2)
    time.sleep(3)  # the proxy's next probe
    result["kill"]["after_restart"] = [status_of(ports["proxy"], 3000 + i) for i in range(5)]
    result["kill"]["idle_after_s"] = wait_idle(ports)
finally:
    system.stop()
    save()
print(json.dumps(result, indent=1))
