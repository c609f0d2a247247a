#!/usr/bin/env bash
# The lead's batched GPU checks (one device call): the GPU tests, the L2 eviction check, then the Triton evaluator
# benchmark (throughput, fidelity under both evictions). The grids run separately: benchmarks/run_gpu_grids.sh.
# Usage on the device machine: source .whl/prelude.sh && bash benchmarks/run_gpu_checks.sh "$OUT"
set -uo pipefail
out=${1:-/tmp/ksdk-gpu}
mkdir -p "$out"
export LITELLM_LOCAL_MODEL_COST_MAP=True
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/native/test_native_cuda_gpu.py tests/triton/test_gpu.py \
  2>&1 | tail -6 | tee "$out/gpu_tests.log"
timeout 60 python3 benchmarks/timing_variance.py examples/triton_nvidia/matmul_bias_relu --l2-check \
  --json "$out/l2_check.json" 2>&1 | tail -4 | tee "$out/l2_check.log"
timeout 400 python3 benchmarks/triton_eval.py --out "$out" --repeats 10 --also-write-flush 2>&1 | tail -70 \
  > "$out/triton_eval.log"
tail -70 "$out/triton_eval.log" | cut -c1-600
