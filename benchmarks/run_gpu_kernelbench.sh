#!/usr/bin/env bash
# KernelBench at its real size on the device machine (issue 13), one part per device call; every part resumes
# where a killed or timed-out call stopped (the bench folders live in .kbout/, kept while the machine stays warm).
# Here first: bash benchmarks/pack_device.sh /work/.mirror/ScalingIntelligence+KernelBench/repo
# There:      source .whl/prelude.sh && source .sbx/setup.sh && bash benchmarks/run_gpu_kernelbench.sh "$OUT" PART
# PART: level1 | level2 | level3  --self-check of the whole level on every local GPU (one lane each); PROBLEMS="19 23" only those
#       big              honest Triton kernels (benchmarks/kernelbench/level1) for the largest level-1 problems,
#                        then benchmarks/kernelbench_independent.py on the same problems, with the ratio
#       evolve           --evolve with the params mutator on the 5 problems whose seeds are in benchmarks/kernelbench
set -uo pipefail
out=${1:?usage: run_gpu_kernelbench.sh OUT PART}
part=${2:?usage: run_gpu_kernelbench.sh OUT PART}
kb=${KB:-.kb/KernelBench}
mkdir -p "$out" .kbout
export LITELLM_LOCAL_MODEL_COST_MAP=True PYTHONUNBUFFERED=1
budget=${BENCH_S:-540}
big=(19_ReLU 23_Softmax 36_RMSNorm_ 47_Sum_reduction_over_a_dimension)
evolve=(19_ReLU 23_Softmax 36_RMSNorm_ 47_Sum_reduction_over_a_dimension 88_MinGPTNewGelu)
filters() { for p in "$@"; do printf -- "--problem %s " "${p%%_*}"; done; }
keep() {  # the bench's summary files into OUT (at most 8 files come back)
  for f in summary.md summary.json bench.png; do [ -f ".kbout/$1/$f" ] && cp ".kbout/$1/$f" "$out/$1.$f"; done
}
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
date -u +"start %FT%TZ"
case "$part" in
  level1|level2|level3)
    timeout "$budget" python3 -m ksdk.cli.main bench "$kb/$part" --self-check -b triton_nvidia --out ".kbout/$part" -q \
      $(for p in ${PROBLEMS:-}; do printf -- "--problem %s " "$p"; done)
    echo "bench exit $?"; keep "$part" ;;
  big)
    timeout "$budget" python3 -m ksdk.cli.main bench "$kb/level1" --candidates benchmarks/kernelbench -b triton_nvidia \
      $(filters "${big[@]}") --out .kbout/big -q
    echo "bench exit $?"; keep big
    timeout 300 python3 benchmarks/kernelbench_independent.py "$kb/level1" benchmarks/kernelbench/level1 "${big[@]}" \
      --ksdk .kbout/big/summary.json --out "$out/independent.json" ;;
  evolve)
    timeout "$budget" python3 -m ksdk.cli.main bench "$kb/level1" --evolve --mutator params --seeds benchmarks/kernelbench \
      -b triton_nvidia $(filters "${evolve[@]}") --max-candidates "${CANDIDATES:-12}" --out .kbout/evolve -q
    echo "bench exit $?"; keep evolve ;;
  *) echo "unknown part $part (level1, level2, level3, big, evolve)"; exit 2 ;;
esac
date -u +"end %FT%TZ"
[ -f ".kbout/$part/summary.md" ] && sed -n '/## Metrics/,/## Problems/p' ".kbout/$part/summary.md"
