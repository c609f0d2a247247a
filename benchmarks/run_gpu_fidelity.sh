#!/usr/bin/env bash
# Fidelity only (10 evaluations of each example seed, the evaluator's default eviction), with every evaluation's
# figures kept (env: TASKS=a,b REPEATS=n PLACEMENTS=n). Usage on the device machine:
#   source .whl/prelude.sh && bash benchmarks/run_gpu_fidelity.sh "$OUT"
set -uo pipefail
out=${1:-/tmp/ksdk-gpu}
mkdir -p "$out"
timeout 300 python3 - "$out" <<'PY' 2>&1 | tail -14 | cut -c1-900 | tee "$out/fidelity.log"
import asyncio, json, sys
sys.path.insert(0, "benchmarks")
import triton_eval as te
import os
n = int(os.environ.get("REPEATS", "10"))
only = os.environ.get("TASKS", "").split(",") if os.environ.get("TASKS") else None
res = asyncio.run(te.fidelity({k: v for k, v in te.examples().items() if not only or k in only}, n,
                              placements=int(os.environ.get("PLACEMENTS", "1"))))
open(sys.argv[1] + "/fidelity.json", "w").write(json.dumps(res, indent=1))
for k, r in res.items():
    print(k, "cv %.4f" % r["speedup_cv"], "agree %.4f" % r["do_bench_agreement"], "in-worker",
          r["in_worker_do_bench_agreement"], [round(x, 4) for x in r["speedups"]])
    print("  in-worker do_bench", [round(x, 4) for x in r["in_worker_do_bench_speedups"]])
    print("  cand_us", [round(x * 1e3, 1) for x in r["candidate_ms_each"]])
    print("  sm_mhz", [c and (c["before"].get("sm_mhz"), c["after"].get("sm_mhz")) for c in r["clocks_each"]])
    if any(r["placement_candidate_us_each"]):
        print("  placements (candidate us)", r["placement_candidate_us_each"][:3])
PY
