#!/usr/bin/env python3
"""TTFT with and without KV-tier reuse (bench/kv_tiers_ttft.sh drives it).

Sends one streamed completion per prompt (token ids, greedy, max_tokens 4) to a running
`tandem serve` and prints {"ttft_s": [...]} — the time from sending to the first streamed token —
in prompt order. Prompts: REPEATS distinct 1-token-BOS + PREFIX-token prefixes, each followed by
SUFFIX tokens chosen by --suffix-seed, so two runs with different suffix seeds share prefixes.
"""
import argparse
import http.client
import json
import random
import time


def prompt(prefix_seed, suffix_seed, prefix_len, suffix_len):
    rng = random.Random(prefix_seed)
    ids = [128000] + [rng.randrange(1000, 100000) for _ in range(prefix_len - 1)]
    rng = random.Random(1_000_003 * (suffix_seed + 1) + prefix_seed)
    return ids + [rng.randrange(1000, 100000) for _ in range(suffix_len)]


def ttft(port, ids):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    body = json.dumps({"prompt": ids, "max_tokens": 4, "temperature": 0, "ignore_eos": True,
                       "stream": True})
    start = time.perf_counter()
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"HTTP {resp.status}: {resp.read()[:500]!r}")
    first = None
    for line in resp:
        if line.startswith(b"data: {") and first is None:
            first = time.perf_counter() - start
        if line.startswith(b"data: [DONE]"):
            break
    conn.close()
    return first


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--prefix-len", type=int, default=1000)
    p.add_argument("--suffix-len", type=int, default=24)
    p.add_argument("--suffix-seed", type=int, required=True)
    a = p.parse_args()
    out = [ttft(a.port, prompt(i, a.suffix_seed, a.prefix_len, a.suffix_len))
           for i in range(a.repeats)]
    print(json.dumps({"ttft_s": out}))


if __name__ == "__main__":
    main()
