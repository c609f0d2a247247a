#!/usr/bin/env bash
# One device call: the judge against do_bench on the Triton examples, twice (passes: each round's one-pass and
# many-pass batches, `passes` and `repeat_ms_per_call` in the clock's record), then the GPU tests named in $TESTS
# with what is left of $TOTAL_S (tests/triton/test_gpu.py holds the memoizing cheat against the passes).
# Usage on the device machine (KernelBench's levels in .kb, from benchmarks/pack_device.sh):
#   source .whl/prelude.sh && source .sbx/setup.sh && TESTS=tests/triton/test_gpu.py bash benchmarks/run_gpu_diagnose.sh "$OUT"
set -uo pipefail
out=${1:-/tmp/ksdk-gpu}
mkdir -p "$out"
export LITELLM_LOCAL_MODEL_COST_MAP=True PYTHONUNBUFFERED=1
start=$(date +%s)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; git log --oneline -1 2>/dev/null
for i in 1 2; do  # twice: the run-to-run spread of the judge against do_bench, with passes
  timeout 150 python3 benchmarks/judge_smoke.py > "$out/smoke$i.txt" 2>&1
  grep -E "^==|judge us|do_bench|message" "$out/smoke$i.txt" | cut -c1-400  # the files under OUT hold every line
  grep -E "clock:" "$out/smoke$i.txt" | cut -c1-330
done
echo "diagnostics took $(( $(date +%s) - start )) s"
left=$(( ${TOTAL_S:-540} - ($(date +%s) - start) ))
[ -n "${TESTS:-}" ] && [ "$left" -gt 30 ] && TESTS_S=$left bash benchmarks/run_gpu_judge.sh "$out" $TESTS
