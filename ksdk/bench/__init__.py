"""`ksdk bench`: run a suite of KernelBench-format problems and report correctness, fast_p, speedups and AMSR."""

from ksdk.bench.runner import (
           bench,
           bench_async,
           make_lanes,
           resume_bench,
           resume_bench_async,
)
from ksdk.bench.store import BenchConfig, BenchSummary, ProblemRecord, load_summary
from ksdk.bench.suite import Problem, discover

__all__ = [
           "BenchConfig",
           "BenchSummary",
           "Problem",
           "ProblemRecord",
           "bench",
           "bench_async",
           "discover",
           "load_summary",
           "make_lanes",
           "resume_bench",
           "resume_bench_async",
]
