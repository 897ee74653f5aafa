"""Puts Tandem's `bench-model` JSON and torch_peer.py's JSON lines from the same GPU run side by
side, with Tandem/peer time ratios (below 1 = Tandem faster) and the issue's targets.
Usage: merge_bench.py TANDEM_JSON PEER_LOG [TANDEM_EAGER_JSON] > result.json"""
import json, sys

TARGETS = {"prefill_7500": 0.85, "decode_1x7500": 0.75, "decode_16x2048": 0.80,
           "decode_32x2048": 0.80}

tandem = json.load(open(sys.argv[1]))
peer = []
for line in open(sys.argv[2]):
    line = line.strip()
    if line.startswith("{"):
        try:
            peer.append(json.loads(line))
        except json.JSONDecodeError:
            pass
peer_ms = {}
for p in peer:
    if p.get("what") == "prefill":
        peer_ms[f"prefill_{p['tokens']}"] = p["ms"]
    elif p.get("what") == "decode_step_cudagraph":
        peer_ms[f"decode_{p['batch']}x{p['ctx']}"] = p["ms"]
ours = {f"prefill_{p['tokens']}": p["ms"] for p in tandem["prefill"]}
ours.update({f"decode_{d['batch']}x{d['ctx']}": d["ms"] for d in tandem["decode"]})
ratios = {}
for key, ms in ours.items():
    if key in peer_ms:
        r = ms / peer_ms[key]
        ratios[key] = {"tandem_ms": round(ms, 3), "peer_ms": peer_ms[key], "ratio": round(r, 3),
                       "target": TARGETS.get(key), "met": (r <= TARGETS[key]) if key in TARGETS else None}
result = {"gpu": tandem["gpu"], "date": tandem["date"], "tandem": tandem, "peer": peer,
          "ratios": ratios}
if len(sys.argv) > 3:
    result["tandem_eager"] = json.load(open(sys.argv[3]))
print(json.dumps(result, indent=2))
