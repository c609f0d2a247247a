#!/usr/bin/env bash
# The judge's GPU checks in one device call, file by file (each with its own summary and failure lines, so a file cut
# short by the time limit does not hide another's results), every outcome streamed to OUT/gpu_tests.log.
#   source .whl/prelude.sh && source .sbx/setup.sh && bash benchmarks/run_gpu_judge.sh "$OUT" [test files]
set -uo pipefail
out=${1:-/tmp/ksdk-gpu}
shift || true
mkdir -p "$out"
export LITELLM_LOCAL_MODEL_COST_MAP=True PYTHONUNBUFFERED=1
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(tests/triton/test_gpu.py tests/kernelbench tests/triton/test_kernel_log_gpu.py
  tests/hostile/test_containment.py tests/core/test_containment_box.py tests/native/test_native_cuda_gpu.py
  tests/triton/test_triton_conformance.py tests/hostile/test_torch_work.py tests/hostile/test_forged_verdicts.py
  tests/hostile/test_references.py tests/triton/test_seed.py)
end=$(( $(date +%s) + ${TESTS_S:-420} ))
for f in "${tests[@]}"; do
  left=$(( end - $(date +%s) ))
  [ "$left" -le 5 ] && { echo "not run (time): $f"; continue; }
  echo "== $f"
  timeout "$left" python3 -m pytest -q -p no:cacheprovider --timeout=150 --tb=short -rfE "$f" 2>&1 \
    | tee -a "$out/gpu_tests.log" | grep -E "^(FAILED|ERROR)|^E  |passed|failed|error" | cut -c1-260 | head -40
done
