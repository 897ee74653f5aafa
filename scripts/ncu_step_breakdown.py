"""Per-kernel GPU time of the last forward step in an `ncu --csv --metrics gpu__time_duration.sum`
log (one line per kernel launch): a step starts at an embedding kernel. Prints a table and writes
JSON. Usage: ncu_step_breakdown.py NCU_CSV OUT_JSON [--longest]; --longest takes the step with
the most GPU time (a prefill followed by decode steps) instead of the last."""
import collections, csv, json, sys

rows = []
with open(sys.argv[1]) as f:
    lines = [l for l in f if l.startswith('"')]  # ncu's own messages are not CSV rows
for r in csv.DictReader(lines):
    if r.get("Metric Name") == "gpu__time_duration.sum":
        unit = r["Metric Unit"]
        value = float(r["Metric Value"].replace(",", ""))
        scale = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3,
                 "msecond": 1e3}[unit]
        rows.append((r["Kernel Name"], value * scale))
starts = [i for i, (name, _) in enumerate(rows) if "embedding" in name]
if not starts:
    sys.exit("no embedding kernel in the log: not a forward pass?")
steps = [rows[a:b] for a, b in zip(starts, starts[1:] + [len(rows)])]
longest = "--longest" in sys.argv[3:]
step = max(steps, key=lambda st: sum(us for _, us in st)) if longest else steps[-1]
by_name = collections.defaultdict(lambda: [0, 0.0])
for name, us in step:
    short = name.replace("(anonymous namespace)", "").replace("<unnamed>", "")
    short = short.split("(")[0].split("<")[0].replace("void ", "")[:70]
    by_name[short][0] += 1
    by_name[short][1] += us
total = sum(us for _, us in step)
table = sorted(by_name.items(), key=lambda kv: -kv[1][1])
print(f"{'longest' if longest else 'last'} step: {len(step)} kernels, {total / 1000:.3f} ms of GPU time")
for name, (n, us) in table:
    print(f"  {us / 1000:8.3f} ms {100 * us / total:5.1f}%  x{n:<4} {name}")
json.dump({"kernels": len(step), "gpu_ms": total / 1000,
           "by_kernel": [{"name": k, "launches": n, "ms": us / 1000} for k, (n, us) in table]},
          open(sys.argv[2], "w"), indent=1)
