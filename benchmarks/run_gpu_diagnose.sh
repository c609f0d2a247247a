#!/usr/bin/env bash
# One device call: where the candidate's side of the judge's clock loses time, and the fixes waiting for a GPU.
# The judge on the Triton examples (its clock's record: the candidate's own stamps `batch_sides_ms` against the
# floor's, and the CPU of every thread during the events batch), level 2's arena problems (57, 83) self-checked, the
# bare two-process probe with the CUPTI subscriber, then the GPU tests named in $TESTS with what is left of $TOTAL_S.
# Usage on the device machine (KernelBench's levels in .kb, from benchmarks/pack_device.sh):
#   source .whl/prelude.sh && source .sbx/setup.sh && TESTS=tests/triton/test_gpu.py bash benchmarks/run_gpu_diagnose.sh "$OUT"
set -uo pipefail
out=${1:-/tmp/ksdk-gpu}
mkdir -p "$out"
export LITELLM_LOCAL_MODEL_COST_MAP=True PYTHONUNBUFFERED=1
start=$(date +%s)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; git log --oneline -1 2>/dev/null
timeout 150 python3 benchmarks/judge_smoke.py > "$out/smoke.txt" 2>&1
grep -E "^==|judge us|do_bench|message|clock:" "$out/smoke.txt" | cut -c1-1200  # the files under OUT hold every line
timeout 80 python3 -m ksdk.cli.main bench "${KB:-.kb/KernelBench}/level2" --self-check -b triton_nvidia \
  --problem 57 --problem 83 --out .kbout/l2arena -q > "$out/l2arena.txt" 2>&1
grep -E "57_|83_" .kbout/l2arena/summary.md 2>/dev/null | cut -c1-300 || tail -5 "$out/l2arena.txt"
timeout 70 python3 benchmarks/cross_process_batch.py --rounds 10 --cupti > "$out/xpb_cupti.txt" 2>&1
grep -E "^(B:|spin after (none|evict\+rewrite))" "$out/xpb_cupti.txt" | cut -c1-170
echo "diagnostics took $(( $(date +%s) - start )) s"
left=$(( ${TOTAL_S:-540} - ($(date +%s) - start) ))
[ -n "${TESTS:-}" ] && [ "$left" -gt 30 ] && TESTS_S=$left bash benchmarks/run_gpu_judge.sh "$out" $TESTS
