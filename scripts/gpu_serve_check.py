"""On the GPU machine: starts `tandem serve MODEL --device cuda` on a free port and checks that
32 concurrent greedy completions equal the same prompts sent one at a time (batching on the GPU
changes no token). Usage: gpu_serve_check.py TANDEM_BINARY MODEL_DIR [SERVE_FLAGS...] (e.g.
--enforce-eager); exits 1 on a mismatch."""
import json, socket, subprocess, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

binary, model, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = subprocess.Popen([binary, "serve", model, "--device", "cuda", "--port", str(port),
                           "--disable-log-requests", *flags], stdout=subprocess.DEVNULL,
                          stderr=open("/tmp/tandem_serve.log", "w"))
base = f"http://127.0.0.1:{port}"


def complete(prompt):
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": 48, "temperature": 0,
                       "ignore_eos": True}).encode()
    req = urllib.request.Request(base + "/v1/completions", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)["choices"][0]["text"]


try:
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except OSError:
            if server.poll() is not None:
                sys.exit(f"serve exited: {open('/tmp/tandem_serve.log').read()[-2000:]}")
            time.sleep(0.2)
    words = ["Once", "The dog", "A little girl", "Tom and Sue", "One day", "The sun", "Lily",
             "In the park"]
    prompts = [f"{words[i % len(words)]} {'very ' * (i // len(words))}" for i in range(32)]
    alone = [complete(p) for p in prompts]
    with ThreadPoolExecutor(32) as pool:
        batched = list(pool.map(complete, prompts))
    same = sum(a == b for a, b in zip(alone, batched))
    shown = " ".join(["serve --device cuda", *flags])
    print(f"{shown}: {same} of 32 concurrent greedy completions equal the same prompts sent alone")
    sys.exit(0 if same == 32 else 1)
finally:
    server.terminate()
    server.wait(timeout=30)
