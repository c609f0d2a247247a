#!/usr/bin/env bash
# One device call: the GPU tests named in $TESTS (or the judge's full GPU set), then the Triton evaluator benchmark
# (mixed-batch throughput sandboxed and unsandboxed, fidelity against do_bench). Usage on the device machine:
#   source .whl/prelude.sh && source .sbx/setup.sh && bash benchmarks/run_gpu_session.sh "$OUT"
set -uo pipefail
out=${1:-/tmp/ksdk-gpu}
mkdir -p "$out"
export LITELLM_LOCAL_MODEL_COST_MAP=True PYTHONUNBUFFERED=1
if [ -n "${TESTS:-}" ]; then
  TESTS_S=${TESTS_S:-200} bash benchmarks/run_gpu_judge.sh "$out" $TESTS
fi
timeout ${BENCH_S:-330} python3 benchmarks/triton_eval.py --out "$out" --repeats ${REPEATS:-5} ${SANDBOX_COST:+--sandbox-cost} \
  2>&1 | tee "$out/triton_eval.log" | grep -E "^(throughput|unsandboxed|fidelity|breakdown|BAD)" | cut -c1-700
