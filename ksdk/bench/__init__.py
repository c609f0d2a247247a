"""`ksdk bench`: run a suite of KernelBench-format problems and report correctness, fast_p, speedups and AMSR."""

from ksdk.bench.runner import bench, bench_async, make_evaluators, resume_bench, resume_bench_async
from ksdk.bench.store import BenchConfig, BenchSummary, ProblemRecord, load_summary
from ksdk.bench.suite import Problem, discover

__all__ = ["bench", "bench_async", "resume_bench", "resume_bench_async", "make_evaluators", "load_summary",
           "BenchConfig", "BenchSummary", "ProblemRecord", "Problem", "discover"]
