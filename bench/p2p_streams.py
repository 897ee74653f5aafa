# GPU 0 -> GPU 1 peer copy of one 7500-token KV (983,040,000 bytes) split over 1, 2, 4, 8 streams.
import json, torch
n = 983040000
src = torch.empty(n, dtype=torch.uint8, device="cuda:0")
dst = torch.empty(n, dtype=torch.uint8, device="cuda:1")
res = {}
with torch.cuda.device(0):
    for k in (1, 2, 4, 8):
        streams = [torch.cuda.Stream(device=0) for _ in range(k)]
        stripe = (n // k + 4095) // 4096 * 4096
        times = []
        for it in range(12):
            torch.cuda.synchronize(0); torch.cuda.synchronize(1)
            start = torch.cuda.Event(enable_timing=True); end = torch.cuda.Event(enable_timing=True)
            start.record()
            for s in streams: s.wait_event(start)
            evs = []
            for i, s in enumerate(streams):
                a = i * stripe; b = min(n, a + stripe)
                with torch.cuda.stream(s):
                    dst[a:b].copy_(src[a:b], non_blocking=True)
                    e = torch.cuda.Event(); e.record(s); evs.append(e)
            for e in evs: torch.cuda.current_stream().wait_event(e)
            end.record(); end.synchronize()
            times.append(start.elapsed_time(end))
        times = sorted(times[2:])
        ms = times[len(times) // 2]
        res[k] = {"ms": round(ms, 3), "gb_s": round(n / ms / 1e6, 1)}
print(json.dumps({"what": "p2p copy GPU0->GPU1 of 983040000 bytes by stripes on k streams", "gpu": torch.cuda.get_device_name(0), "results": res}))
