#!/usr/bin/env bash
# The parameter mutator against an exhaustive grid on every example Triton task (one device call, ~4 min on an H100).
# Usage on the device machine: source .whl/prelude.sh && bash benchmarks/run_gpu_grids.sh "$OUT"
set -uo pipefail
out=${1:-/tmp/ksdk-gpu}
mkdir -p "$out"
for t in elementwise_chain row_softmax matmul_bias_relu; do
  timeout 300 python3 benchmarks/evolution_vs_grid.py examples/triton_nvidia/$t/task.py --json "$out/grid_$t.json" \
    > "$out/grid_$t.log" 2>&1
  grep -v '^row ' "$out/grid_$t.log" | grep -v '^    ' | tail -16
done
