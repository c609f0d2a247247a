#!/usr/bin/env bash
# The judge's GPU checks in one device call: the GPU tests (Triton, native CUDA, the conformance kit on a GPU,
# the hostile candidates on a GPU), each test's outcome streamed to OUT/gpu_tests.log. Usage on the device machine:
#   source .whl/prelude.sh && source .sbx/setup.sh && bash benchmarks/run_gpu_judge.sh "$OUT" [pytest args]
set -uo pipefail
out=${1:-/tmp/ksdk-gpu}
shift || true
mkdir -p "$out"
export LITELLM_LOCAL_MODEL_COST_MAP=True PYTHONUNBUFFERED=1
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(tests/triton/test_gpu.py tests/kernelbench tests/triton/test_kernel_log_gpu.py
  tests/native/test_native_cuda_gpu.py tests/triton/test_triton_conformance.py tests/hostile/test_torch_work.py
  tests/hostile/test_forged_verdicts.py tests/hostile/test_references.py tests/triton/test_seed.py)
timeout ${TESTS_S:-420} python3 -m pytest -v -p no:cacheprovider --timeout=150 --tb=short -rfE --durations=8 \
  "${tests[@]}" 2>&1 | tee "$out/gpu_tests.log" | grep -E "PASSED|FAILED|ERROR|^E |passed|failed" | cut -c1-300 | tail -60
