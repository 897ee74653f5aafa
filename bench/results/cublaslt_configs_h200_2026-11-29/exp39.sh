#!/usr/bin/env bash
set -u
mkdir -p $OUT/lt
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv > $OUT/lt/gpu.txt
timeout 420 .gpu/lt_enumerate > $OUT/lt/lt_enumerate.json 2> $OUT/lt/lt_enumerate.log
echo "rc=$?"
cat $OUT/lt/lt_enumerate.log | tail -5
python3 - <<'PY'
import json, os
d = json.load(open(os.environ["OUT"] + "/lt/lt_enumerate.json"))
for s in d:
    c = s["candidates"]
    best = min(c, key=lambda r: r["ms"]) if c else None
    print(s["shape"], s["ids"], s["configs_tried"], s["configs_accepted"], "best", best)
PY
