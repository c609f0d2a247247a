#!/usr/bin/env bash
# Short GPU check after a timing change: the Triton GPU tests, then fidelity (10 evaluations each) of two examples.
# Usage on the device machine: source .whl/prelude.sh && bash benchmarks/run_gpu_fidelity.sh "$OUT"
set -uo pipefail
out=${1:-/tmp/ksdk-gpu}
mkdir -p "$out"
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/triton/test_gpu.py 2>&1 | tail -6 | tee "$out/triton_gpu.log"
timeout 90 python3 - "$out" <<'PY' 2>&1 | tail -8 | tee "$out/fidelity.log"
import asyncio, json, sys
sys.path.insert(0, "benchmarks")
import triton_eval as te
tasks = {k: v for k, v in te.examples().items() if k in ("matmul_bias_relu", "elementwise_chain")}
res = asyncio.run(te.fidelity(dict(sorted(tasks.items(), reverse=True)), 10))
for k, v in res.items():
    print(k, json.dumps(v))
open(sys.argv[1] + "/fidelity.json", "w").write(json.dumps(res, indent=1))
PY
