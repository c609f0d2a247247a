#!/usr/bin/env bash
# One device call: where the candidate's side of the judge's clock loses time. The bare two-process probe (with and
# without the CUPTI subscriber), the judge on the Triton examples (as is, unsandboxed, without cache eviction), then
# the GPU tests named in $TESTS with what is left of $TOTAL_S. Usage on the device machine:
#   source .whl/prelude.sh && source .sbx/setup.sh && bash benchmarks/run_gpu_diagnose.sh "$OUT"
set -uo pipefail
out=${1:-/tmp/ksdk-gpu}
mkdir -p "$out"
export LITELLM_LOCAL_MODEL_COST_MAP=True PYTHONUNBUFFERED=1
start=$(date +%s)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; git log --oneline -1 2>/dev/null
timeout 100 python3 benchmarks/cross_process_batch.py --rounds 15 > "$out/xpb.txt" 2>&1
timeout 100 python3 benchmarks/cross_process_batch.py --rounds 15 --cupti > "$out/xpb_cupti.txt" 2>&1
timeout 150 python3 benchmarks/judge_smoke.py > "$out/smoke.txt" 2>&1
timeout 100 python3 benchmarks/judge_smoke.py --no-sandbox elementwise_chain matmul_bias_relu > "$out/smoke_nosb.txt" 2>&1
timeout 70 python3 benchmarks/judge_smoke.py --no-flush elementwise_chain > "$out/smoke_noflush.txt" 2>&1
grep -vE "after (evict|rewrite) " "$out/xpb.txt" | cut -c1-160  # the files under OUT hold every line
echo "==== with CUPTI"; grep -E "^spin after evict\+rewrite" "$out/xpb_cupti.txt" | cut -c1-160
for f in smoke smoke_nosb smoke_noflush; do
  echo "#### $f"; grep -E "^==|judge us|do_bench|message|clock:" "$out/$f.txt" | cut -c1-700
done
echo "diagnostics took $(( $(date +%s) - start )) s"
left=$(( ${TOTAL_S:-540} - ($(date +%s) - start) ))
[ -n "${TESTS:-}" ] && [ "$left" -gt 30 ] && TESTS_S=$left bash benchmarks/run_gpu_judge.sh "$out" $TESTS
