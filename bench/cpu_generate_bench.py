#!/usr/bin/env python3
"""CPU prefill and decode throughput of `tandem generate`, recorded under bench/results/.

Runs each model with a random prompt of --prompt-len tokens and --decode-tokens greedy tokens
(ignore-eos), a few repetitions, and keeps the best. The llama-3.2-1b model is made with
`tandem make-model --config llama-3.2-1b` (random bf16 weights) unless --skip-1b.
"""
import argparse, datetime, json, os, platform, random, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_model": cpu, "cores": os.cpu_count(), "host": platform.node(),
            "kernel": platform.release()}


def run_generate(tandem, model, prompt_len, decode_tokens, vocab, threads, reps):
    rng = random.Random(0)
    ids = [rng.randrange(3, vocab) for _ in range(prompt_len)]
    best = None
    for _ in range(reps):
        cmd = [tandem, "generate", "--model", model, "--prompt-ids", ",".join(map(str, ids)),
               "--max-tokens", str(decode_tokens), "--temperature", "0", "--ignore-eos", "--json",
               "--threads", str(threads)]
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        t = out["timings"]
        row = {"prompt_tokens": prompt_len, "decode_tokens": len(out["generated_ids"]),
               "prefill_ms": t["prefill_ms"],
               "prefill_tokens_per_s": prompt_len / (t["prefill_ms"] / 1000.0),
               "decode_tokens_per_s": t["decode_tokens_per_s"]}
        if best is None or row["prefill_ms"] < best["prefill_ms"]:
            best = {**row, "decode_tokens_per_s": max(row["decode_tokens_per_s"],
                                                      best["decode_tokens_per_s"] if best else 0)}
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tandem", default=os.path.join(ROOT, "build", "tandem"))
    ap.add_argument("--shared", default=os.environ.get("TANDEM_SHARED", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--work", default="/tmp/tandem-bench")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-1b", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    load_before = os.getloadavg()
    results = []
    stories = os.path.join(a.shared, "golden", "models", "stories260K")
    results.append({"model": "stories260K", **run_generate(a.tandem, stories, 256, 128, 512, a.threads, a.reps)})
    if not a.skip_1b:
        model = os.path.join(a.work, "llama-3.2-1b")
        if not os.path.exists(os.path.join(model, "config.json")):
            subprocess.run([a.tandem, "make-model", "--config", "llama-3.2-1b", "--out", model,
                            "--dtype", "bf16", "--seed", "0"], check=True)
        results.append({"model": "llama-3.2-1b (random bf16)",
                        **run_generate(a.tandem, model, 128, 16, 128000, a.threads, 1)})
    now = datetime.datetime.now(datetime.timezone.utc)
    doc = {"benchmark": "cpu_generate", "date": now.isoformat(timespec="seconds"),
           "machine": machine(), "threads": a.threads or os.cpu_count(),
           # Other work on the machine skews CPU figures: the 1-minute load before and after.
           "load_average_1m": [load_before[0], os.getloadavg()[0]], "results": results}
    out = a.out or os.path.join(ROOT, "bench", "results", f"cpu_generate_{now:%Y-%m-%d}.json")
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    sys.exit(main())
