#!/usr/bin/env bash
# The judge's GPU checks in one device call: the GPU tests (Triton, native CUDA, the conformance kit on a GPU,
# the hostile candidates on a GPU). Usage on the device machine:
#   source .whl/prelude.sh && source .sbx/setup.sh && bash benchmarks/run_gpu_judge.sh "$OUT"
set -uo pipefail
out=${1:-/tmp/ksdk-gpu}
mkdir -p "$out"
export LITELLM_LOCAL_MODEL_COST_MAP=True
timeout ${TESTS_S:-420} python3 -m pytest -q -p no:cacheprovider -x --durations=8 tests/triton/test_gpu.py \
  tests/native/test_native_cuda_gpu.py tests/triton/test_triton_conformance.py tests/hostile/test_torch_work.py \
  tests/hostile/test_forged_verdicts.py tests/hostile/test_references.py tests/hostile/test_escape.py \
  2>&1 | tail -40 | tee "$out/gpu_tests.log"
