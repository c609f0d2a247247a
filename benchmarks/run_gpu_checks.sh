#!/usr/bin/env bash
# The lead's batched GPU checks (one device call): native GPU verdict tests, the Triton evaluator benchmark
# (throughput, then fidelity), and the parameter-mutator evolution against an exhaustive grid.
# Usage on the device machine: source .whl/prelude.sh && bash benchmarks/run_gpu_checks.sh "$OUT"
set -uo pipefail
out=${1:-/tmp/ksdk-gpu}
mkdir -p "$out"
export LITELLM_LOCAL_MODEL_COST_MAP=True
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/native/test_native_cuda_gpu.py 2>&1 | tail -5 | tee "$out/native_gpu.log"
for t in elementwise_chain row_softmax; do
  timeout 120 python3 benchmarks/evolution_vs_grid.py examples/triton_nvidia/$t/task.py --json "$out/grid_$t.json" \
    2>&1 | grep -v '^  ' | tail -12 | tee "$out/grid_$t.log"
done
timeout 300 python3 benchmarks/triton_eval.py --out "$out" --repeats 10 2>&1 | tail -70 > "$out/triton_eval.log"
tail -70 "$out/triton_eval.log"
