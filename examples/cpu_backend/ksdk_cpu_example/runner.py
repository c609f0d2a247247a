"""One evaluation in the worker: load (reference + entry scan), compile, correctness trials, interleaved timing."""

from __future__ import annotations

import traceback
from typing import Callable

import numpy as np

from ksdk.interfaces.backend import EvalContext
from ksdk.models import Candidate, DeviceInfo, ErrorKind, EvalResult, KernelMeta, Stage, Status, Task, trim_message
from ksdk.timing import speedup
from ksdk.verify import compare_outputs
from ksdk_cpu_example import compiler, signature
from ksdk_cpu_example.reference import Reference, host, task_spec
from ksdk_cpu_example.timing import time_interleaved

TORCH_BASELINE = "reference Model eager in torch on the CPU (1 thread)"


def _infra(result: EvalResult, stage: Stage, text: str) -> EvalResult:
    result.fail(stage, ErrorKind.INFRA, text)
    result.status = Status.INFRA_ERROR
    return result


def _poison(arrays: list[np.ndarray]) -> None:
    """Fill outputs with values a correct kernel must overwrite (NaN for floats, a sentinel for integers)."""
    for a in arrays:
        if a.dtype.kind == "f":
            a.fill(np.nan)
        elif a.dtype.kind in "iu":
            a.fill(np.iinfo(a.dtype).min + 7)
        else:
            a.fill(True)


def make_call(built: compiler.Built, sig: signature.Signature, inputs: list, weights: list,
              outputs: list[np.ndarray]) -> Callable[[], None]:
    """A zero-argument closure calling the C entry with these host buffers (they must outlive it)."""
    ffi = built.ffi
    tensors = [x for x in inputs if isinstance(x, np.ndarray)] + list(weights)
    values: list = []
    it_in, it_w, it_out = iter(inputs), iter(weights), iter(outputs)
    dims = [int(d) for t in tensors for d in t.shape]
    it_dims = iter(dims)
    for arg in sig.args:
        if arg.role == "size":
            values.append(next(it_dims))
            continue
        x = next({"input": it_in, "weight": it_w, "output": it_out}[arg.role])
        values.append(ffi.cast(arg.ctype, x.ctypes.data) if isinstance(x, np.ndarray) else x)
    fn = built.fn

    def call() -> None:
        fn(*values)

    return call


def evaluate(task: Task, cand: Candidate, ctx: EvalContext, result: EvalResult) -> EvalResult:
    """Fill `result` (backend, device and versions already set) through every stage the candidate reaches."""
    ctx.stage(Stage.LOAD)
    try:
        spec = task_spec(task.source)
        ref = Reference(task.name, task.source, task.seed)
        inputs0 = ref.inputs(task.seed)
        refs0 = ref.run(inputs0)
        sig = signature.build(spec.entry, [host(x) for x in inputs0], ref.weights, refs0)
    except Exception as e:  # the task's fault, not the candidate's
        return _infra(result, Stage.LOAD, f"the task's reference failed on the host: {type(e).__name__}: {e}\n"
                      + traceback.format_exc(limit=3))
    proto = sig.prototype()
    if not cand.source.strip():
        return result.fail(Stage.LOAD, ErrorKind.SYNTAX, f"the candidate is empty; define:\n  {proto}")
    if compiler.find_entry(cand.source, spec.entry) is None:
        return result.fail(
            Stage.LOAD, ErrorKind.MISSING_ENTRY,
            f"no definition of the entry function '{spec.entry}' found; the candidate must define:\n  {proto[:-1]} {{ ... }}",
        )

    ctx.stage(Stage.COMPILE)
    try:
        built = compiler.build(cand.source, proto, spec.entry)
    except compiler.CompileError as e:
        return result.fail(Stage.COMPILE, ErrorKind.COMPILE, str(e), e.line)
    result.kernels = [KernelMeta(name=spec.entry, extra={"object_bytes": built.size_bytes,
                                                          "cflags": " ".join(compiler.CFLAGS)})]
    try:
        return _check_and_time(task, ctx, result, spec, ref, sig, built, inputs0, refs0)
    finally:
        built.close()


def _check_and_time(task: Task, ctx: EvalContext, result: EvalResult, spec, ref: Reference,
                    sig: signature.Signature, built: compiler.Built, inputs0: list, refs0: list) -> EvalResult:
    """Correctness trials on fresh inputs, then interleaved timing against the baseline(s)."""
    ctx.stage(Stage.CORRECTNESS)
    worst = None
    for trial in range(task.correctness_trials):
        seed = task.seed + trial
        inputs = inputs0 if trial == 0 else ref.inputs(seed)
        refs = refs0 if trial == 0 else ref.run(inputs)
        host_in = [host(x) for x in inputs]
        before = [x.copy() for x in host_in if isinstance(x, np.ndarray)]
        outs = [np.empty_like(r) for r in refs]
        _poison(outs)
        make_call(built, sig, host_in, ref.weights, outs)()
        checks, failure = compare_outputs(outs, refs, task.tolerance)
        worst = checks if worst is None else [
            c if (not c.ok or c.max_abs_error >= w.max_abs_error) and w.ok else w for c, w in zip(checks, worst)
        ]
        result.outputs, result.trials = worst, trial + 1
        if failure:
            kind, text = failure
            return result.fail(Stage.CORRECTNESS, kind, f"{text} (trial {trial + 1}, input seed {seed})")
        after = [x for x in host_in if isinstance(x, np.ndarray)]
        if any(not np.array_equal(a, b, equal_nan=a.dtype.kind == "f") for a, b in zip(after, before)):
            return result.fail(Stage.CORRECTNESS, ErrorKind.RUNTIME,
                               "the kernel wrote into an input buffer, which the contract declares const")
    result.stage, result.status = Stage.CORRECTNESS, Status.OK

    if ctx.skip_performance or ctx.interpret:
        result.performance_skipped = "performance stage not requested" if ctx.skip_performance else "no device"
        return result

    ctx.stage(Stage.PERFORMANCE)
    outs = [np.empty_like(r) for r in refs0]
    host_in = [host(x) for x in inputs0]
    fns = {"candidate": make_call(built, sig, host_in, ref.weights, outs)}
    closers: list = []
    if spec.baseline_c:
        try:
            base = compiler.build(spec.baseline_c, sig.prototype(), spec.entry)
        except compiler.CompileError as e:
            return _infra(result, Stage.PERFORMANCE, f"the task's C_BASELINE does not compile: {e}")
        base_outs = [np.empty_like(r) for r in refs0]
        fns["baseline"] = make_call(base, sig, host_in, ref.weights, base_outs)
        closers.append(base.close)
        result.baseline = ("naive C kernel shipped with the task (C_BASELINE), same compiler and flags, "
                           "same inputs, 1 thread")
    else:
        result.baseline = TORCH_BASELINE
    torch_inputs = inputs0

    def torch_eager() -> None:
        ref.run(torch_inputs)

    fns["torch"] = torch_eager
    try:
        stats = time_interleaved(fns, task.timing)
    finally:
        for close in closers:
            close()
    result.candidate_timing = stats["candidate"]
    if "baseline" in stats:
        result.baseline_timing = stats["baseline"]
        result.extra_baselines[TORCH_BASELINE] = stats["torch"]
    else:
        result.baseline_timing = stats["torch"]
    result.speedup = speedup(result.baseline_timing, result.candidate_timing)
    result.stage = Stage.PERFORMANCE
    return result
