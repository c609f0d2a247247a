"""Evaluate a native candidate in a worker: parse, compile, load, check against the host reference, time.

Inputs come from the task's get_inputs on the host and are copied to device buffers; outputs are poisoned
(0xFF bytes: NaN for floats) before every run, copied back and compared with ksdk.verify.compare_outputs.
Timing uses the runtime's events on the session's stream with an L2-flushing memset between repetitions.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ksdk.interfaces.backend import EvalContext
from ksdk.models import (Candidate, DeviceInfo, ErrorKind, EvalResult, KernelMeta, OutputCheck, Stage, Status,
                         Task, trim_message)
from ksdk.timing import speedup, summarize
from ksdk.verify import compare_outputs
from ksdk_native.binding import Binding, MissingSymbol, NativeError, timed_samples
from ksdk_native.candidate import ArrayInfo, CandidateError, NativeCandidate, Plan, parse_candidate, resolve
from ksdk_native.compiler import CompileError, compile_source, compiler_version
from ksdk_native.dialect import Dialect, Toolchain, ToolchainNotFound, locate, target_arch

FLUSH_BYTES = 256 << 20  # larger than any current GPU's L2 (H100: 50 MB), as Triton's do_bench uses
POISON = 0xFF
MAX_CACHED = 16  # compiled images and loaded modules kept per worker
BASELINE_NAME = "NATIVE_BASELINE"  # optional in a task file: a naive native kernel (str, or {language: str})


class DeviceFault(Exception):
    """A kernel faulted: the context is no longer trusted (the worker must be recycled)."""


# -- per-worker session -----------------------------------------------------------------------------------
@dataclass
class Session:
    """The binding opened on one device, its stream, the flush buffer and loaded modules by image digest."""

    dialect: Dialect
    toolchain: Toolchain
    binding: Binding
    stream: Any
    arch: Optional[str]
    device: DeviceInfo
    versions: dict[str, str]
    modules: dict[str, Any] = field(default_factory=dict)  # image digest -> loaded module, oldest first
    images: dict[str, Any] = field(default_factory=dict)  # source hash -> Compiled (the baseline recompiles never)
    flush: Optional[tuple[int, int]] = None

    def flush_buffer(self) -> tuple[int, int]:
        if self.flush is None:
            self.flush = (self.binding.malloc(FLUSH_BYTES), FLUSH_BYTES)
        return self.flush


def device_ordinal(dialect: Dialect, device: int) -> int:
    """The in-process ordinal: 0 when the worker's visible-devices variable already narrowed it to one device."""
    visible = os.environ.get(dialect.visible_devices_env, "")
    ids = [x for x in visible.split(",") if x.strip()]
    return 0 if len(ids) == 1 else device


def open_session(dialect: Dialect, device: int) -> Session:
    """Find the toolchain, load the libraries, make the device current and create a stream."""
    toolchain = locate(dialect)
    binding = Binding(dialect, toolchain)
    ordinal = device_ordinal(dialect, device)
    binding.open(ordinal)
    detected = None
    major, minor = binding.device_attribute("cc_major"), binding.device_attribute("cc_minor")
    if major is not None and minor is not None:
        detected = f"sm_{major}{minor}"
    arch = target_arch(dialect, toolchain, detected)
    versions = {f"{dialect.name}_compiler": compiler_version(toolchain.compiler) if toolchain.compiler else ""}
    versions.update(binding.versions())
    name = binding.device_name()
    info = DeviceInfo(index=device, name=name, kind="gpu",
                      driver=versions.get(f"{dialect.name}_driver"), runtime=versions.get(f"{dialect.name}_runtime"),
                      extra={"dialect": dialect.name, "arch": arch, "wave_size": dialect.wave_size})
    return Session(dialect, toolchain, binding, binding.stream_create(), arch, info, versions)


# -- the task's reference on the host ------------------------------------------------------------------------
@dataclass
class HostValue:
    """One host value: an array (with its dtype name; bfloat16 kept as raw uint16 bits) or a number."""

    array: Optional[np.ndarray] = None
    dtype: str = ""
    number: Any = None

    @property
    def info(self):
        return ArrayInfo(tuple(self.array.shape), self.array.itemsize) if self.array is not None else self.number

    def as_float(self) -> np.ndarray:
        """Values for comparison (bfloat16 bits widened to float32)."""
        if self.dtype == "bfloat16":
            return (self.array.astype(np.uint32) << 16).view(np.float32)
        return self.array


def to_host(x) -> HostValue:
    """A torch tensor, numpy array or Python number as a HostValue."""
    if isinstance(x, np.ndarray):
        return HostValue(array=np.ascontiguousarray(x), dtype=str(x.dtype))
    if isinstance(x, (bool, int, float)):
        return HostValue(number=x)
    if type(x).__module__.startswith("torch"):
        import torch

        t = x.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            return HostValue(array=t.view(torch.int16).numpy().view(np.uint16).copy(), dtype="bfloat16")
        return HostValue(array=t.numpy().copy(), dtype=str(t.dtype).replace("torch.", ""))
    if isinstance(x, np.generic):
        return HostValue(number=x.item())
    raise TypeError(f"unsupported value of type {type(x).__name__} (tensors, arrays and numbers only)")


class Reference:
    """The task module executed on the host: its model, inputs per trial, and reference outputs."""

    def __init__(self, task: Task):
        ns: dict[str, Any] = {"__name__": f"ksdk_task_{task.name}"}
        exec(compile(task.source, task.path or f"<task {task.name}>", "exec"), ns)
        self.ns, self.task = ns, task
        self._seed(task.seed)
        self.init_inputs = list(ns["get_init_inputs"]())
        self.model = ns["Model"](*self.init_inputs)
        torch = self._torch()
        self.params: list[HostValue] = []
        if torch is not None and isinstance(self.model, torch.nn.Module):
            self.model.eval()
            self.params = [to_host(v) for v in self.model.state_dict().values()]

    @staticmethod
    def _torch():
        import sys

        return sys.modules.get("torch")

    def _seed(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch = self._torch()
        if torch is not None:
            torch.manual_seed(seed)

    def trial(self, i: int) -> tuple[list, list[HostValue], list[HostValue]]:
        """(raw inputs, host inputs, host reference outputs) for correctness trial i."""
        self._seed(self.task.seed + 1000 * (i + 1))
        raw = list(self.ns["get_inputs"]())
        outs = self.forward(raw)
        return raw, [to_host(x) for x in raw], [to_host(o) for o in outs]

    def forward(self, raw: list) -> list:
        torch = self._torch()
        if torch is not None:
            with torch.no_grad():
                out = self.model(*raw)
        else:
            out = self.model(*raw)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    def native_baseline(self, language: str) -> Optional[str]:
        b = self.ns.get(BASELINE_NAME)
        if isinstance(b, dict):
            b = b.get(language)
        return b if isinstance(b, str) else None


# -- one candidate on the device --------------------------------------------------------------------------------
@dataclass
class Loaded:
    """A compiled, loaded candidate: its parsed description and kernel handles."""

    cand: NativeCandidate
    functions: dict[str, Any]
    kernels: list[KernelMeta]
    max_threads: dict[str, int]


def load_candidate(session: Session, cand: NativeCandidate, timeout: float) -> Loaded:
    """Compile and load; raises CompileError or NativeError (from the module calls)."""
    key = hashlib.sha256(f"{session.arch}\0{cand.source}".encode()).hexdigest()
    compiled = session.images.get(key)
    if compiled is None:
        compiled = compile_source(session.dialect, session.toolchain.compiler, cand.source, session.arch, timeout)
        session.images[key] = compiled
        while len(session.images) > MAX_CACHED:
            session.images.pop(next(iter(session.images)))
    module = session.modules.get(compiled.digest)
    if module is None:
        module = session.binding.load_module(compiled.image)
        session.modules[compiled.digest] = module
        while len(session.modules) > MAX_CACHED:  # a long evolution must not pile up loaded modules
            try:
                session.binding.unload_module(session.modules.pop(next(iter(session.modules))))
            except NativeError:
                pass
    functions, kernels, max_threads = {}, [], {}
    for name in cand.kernels:
        try:
            fn = session.binding.get_function(module, name)
        except NativeError as e:
            raise CandidateError(ErrorKind.MISSING_ENTRY, f"kernel '{name}' is not in the compiled module ({e}); "
                                 f"declare it extern \"C\" __global__ so its name is not mangled", cand.header_line)
        functions[name] = fn
        attrs = session.binding.function_attributes(fn)
        if session.dialect.func_attributes_confirmed:
            local = attrs.get("local_size_bytes")
            if attrs.get("max_threads_per_block"):
                max_threads[name] = attrs["max_threads_per_block"]
            kernels.append(KernelMeta(
                name=name, registers=attrs.get("num_regs"), spills=None if local is None else local // 4,
                shared_mem_bytes=attrs.get("shared_size_bytes"),
                extra={"local_bytes": local, "max_threads_per_block": attrs.get("max_threads_per_block"),
                       "wave_size": session.dialect.wave_size, "image_digest": compiled.digest}))
        else:
            kernels.append(KernelMeta(name=name, extra={"unconfirmed_attributes": attrs,
                                                        "wave_size": session.dialect.wave_size,
                                                        "image_digest": compiled.digest}))
    return Loaded(cand, functions, kernels, max_threads)


class Buffers:
    """Device buffers for one run: inputs and parameters copied in, outputs and workspaces allocated."""

    def __init__(self, session: Session, inputs: list[HostValue], outputs: list[HostValue], params: list[HostValue]):
        self.s = session
        self.ptrs: dict[str, int] = {}
        self.values: dict[str, tuple[str, Any]] = {}
        self.outputs = outputs
        self._owned: list[int] = []
        try:
            for prefix, items, copy in (("in", inputs, True), ("p", params, True), ("out", outputs, False)):
                for i, hv in enumerate(items):
                    name = f"{prefix}{i}"
                    if hv.array is None:
                        n = hv.number
                        self.values[name] = ("float32", float(n)) if isinstance(n, float) else ("int64", int(n))
                        continue
                    ptr = self._alloc(hv.array.nbytes)
                    self.ptrs[name] = ptr
                    if copy and hv.array.nbytes:
                        session.binding.copy_to_device(ptr, hv.array)
        except BaseException:  # an allocation or copy failed partway: nobody else holds these buffers
            self.free()
            raise

    def _alloc(self, nbytes: int) -> int:
        p = self.s.binding.malloc(nbytes)
        self._owned.append(p)
        return p

    def add_workspaces(self, sizes: dict[str, int]) -> None:
        for name, nbytes in sizes.items():
            if name not in self.ptrs:
                self.ptrs[name] = self._alloc(nbytes)

    def poison_outputs(self, stream=None) -> None:
        for i, hv in enumerate(self.outputs):
            if f"out{i}" in self.ptrs and hv.array.nbytes:
                self.s.binding.memset(self.ptrs[f"out{i}"], POISON, hv.array.nbytes, stream)

    def read_outputs(self) -> list[HostValue]:
        got = []
        for i, hv in enumerate(self.outputs):
            arr = np.empty_like(hv.array)
            if arr.nbytes:
                self.s.binding.copy_to_host(arr, self.ptrs[f"out{i}"])
            got.append(HostValue(array=arr, dtype=hv.dtype))
        return got

    def free(self) -> None:
        for p in self._owned:
            try:
                self.s.binding.free(p)
            except NativeError:
                pass  # after a fault every call fails; the worker is recycled anyway
        self._owned.clear()


def prepare_runs(session: Session, loaded: Loaded, plan: Plan, bufs: Buffers) -> Callable[[Any], None]:
    """One callable that issues every launch of the plan (zeroing workspaces first) on a stream."""
    bufs.add_workspaces(plan.workspaces)
    launches = []
    for l in plan.launches:
        limit = loaded.max_threads.get(l.kernel)
        threads = math.prod(l.block)
        if limit and threads > limit:
            raise CandidateError(ErrorKind.RUNTIME, f"kernel '{l.kernel}' is launched with {threads} threads per "
                                 f"block but allows at most {limit} (registers or __launch_bounds__ limit it)",
                                 loaded.cand.header_line)
        args = []
        for name in l.args:
            if name in bufs.ptrs:
                args.append(("ptr", bufs.ptrs[name]))
            elif name in bufs.values:
                args.append(bufs.values[name])
            else:
                args.append(plan.scalars[name])
        launches.append(session.binding.prepare(loaded.functions[l.kernel], l.grid, l.block, l.shared_mem, args))
    ws = [(bufs.ptrs[n], b) for n, b in plan.workspaces.items() if b]

    def run(stream) -> None:
        for p, b in ws:
            session.binding.memset(p, 0, b, stream)
        for launch in launches:
            launch(stream)

    return run


def run_once(session: Session, run: Callable[[Any], None]) -> None:
    """Issue the launches and wait; launch errors stay RUNTIME unless sticky, later errors are device faults."""
    try:
        run(session.stream)
    except NativeError as e:
        if e.sticky:
            raise DeviceFault(str(e)) from None
        raise
    try:
        session.binding.synchronize(session.stream, context="waiting for the candidate's kernels")
    except NativeError as e:
        raise DeviceFault(str(e)) from None


# -- evaluate ------------------------------------------------------------------------------------------------
def _plan(cand: NativeCandidate, ref: Reference, inputs: list[HostValue], outputs: list[HostValue]) -> Plan:
    return resolve(cand, [h.info for h in inputs], [h.info for h in outputs], [h.info for h in ref.params],
                   ref.init_inputs)


def evaluate(task: Task, candidate: Candidate, ctx: EvalContext, dialect: Dialect,
             session_factory: Callable[[], Session], backend: str, version: str) -> EvalResult:
    """The whole evaluation; every failure becomes a verdict (DeviceFault marks the worker for recycling)."""
    res = EvalResult(backend=backend, backend_version=version)
    ctx.stage(Stage.LOAD)
    try:
        cand = parse_candidate(candidate.source)
    except CandidateError as e:
        return res.fail(Stage.LOAD, e.kind, e.message, e.line)
    try:
        ref = Reference(task)
        raw, inputs, refs = ref.trial(0)
    except ImportError as e:
        return _infra(res, Stage.LOAD, f"the task's reference could not be imported on the host: {e}. Native "
                      "backends compute the reference with the task's own code (KernelBench tasks need torch; "
                      "a CPU build suffices)")
    except Exception as e:
        return _infra(res, Stage.LOAD, f"the task's reference failed on the host: {type(e).__name__}: {e}")
    try:
        plan = _plan(cand, ref, inputs, refs)
    except CandidateError as e:
        return res.fail(Stage.LOAD, e.kind, e.message, e.line)

    ctx.stage(Stage.COMPILE)
    try:
        session = session_factory()
    except (ToolchainNotFound, NativeError, MissingSymbol) as e:
        return _infra(res, Stage.COMPILE, f"the {dialect.vendor} runtime could not be opened: {e}")
    res.device, res.versions = session.device, dict(session.versions)
    try:
        loaded = load_candidate(session, cand, task.timeouts.compile)
    except CompileError as e:
        return res.fail(Stage.COMPILE, ErrorKind.COMPILE, e.message, e.line)
    except CandidateError as e:
        return res.fail(Stage.COMPILE, e.kind, e.message, e.line)
    except NativeError as e:
        return res.fail(Stage.COMPILE, ErrorKind.COMPILE, f"the runtime rejected the compiled module: {e}")
    res.kernels = loaded.kernels

    ctx.stage(Stage.CORRECTNESS)
    worst: dict[int, OutputCheck] = {}
    bufs: Optional[Buffers] = None
    try:
        for trial in range(task.correctness_trials):
            if trial:
                raw, inputs, refs = ref.trial(trial)
                plan = _plan(cand, ref, inputs, refs)
            if bufs is not None:
                bufs.free()
            bufs = Buffers(session, inputs, refs, ref.params)
            run = prepare_runs(session, loaded, plan, bufs)
            bufs.poison_outputs()
            run_once(session, run)
            got = bufs.read_outputs()
            checks, failure = compare_outputs([g.as_float() for g in got], [r.as_float() for r in refs],
                                              task.tolerance, [g.dtype for g in got], [r.dtype for r in refs])
            for c in checks:  # keep each output's worst trial (a failing one over any passing one)
                prev = worst.get(c.index)
                if prev is None or (prev.ok and (not c.ok or c.max_abs_error > prev.max_abs_error)):
                    worst[c.index] = c
            res.trials = trial + 1
            if failure:
                res.outputs = [worst[k] for k in sorted(worst)]
                if bufs is not None:
                    bufs.free()
                return res.fail(Stage.CORRECTNESS, failure[0], f"trial {trial + 1}: {failure[1]}")
        res.outputs = [worst[k] for k in sorted(worst)]
    except CandidateError as e:
        return _free_and(bufs, res.fail(Stage.CORRECTNESS, e.kind, e.message, e.line))
    except DeviceFault as e:
        return _fault(res, Stage.CORRECTNESS, str(e))
    except NativeError as e:
        kind = ErrorKind.OOM if (e.oom or e.call == "malloc") else ErrorKind.RUNTIME
        return _free_and(bufs, res.fail(Stage.CORRECTNESS, kind, str(e)))

    if ctx.skip_performance or ctx.interpret:
        res.performance_skipped = "skipped on request" if ctx.skip_performance else "no device"
        res.stage, res.status = Stage.CORRECTNESS, Status.OK
        return _free_and(bufs, res)

    ctx.stage(Stage.PERFORMANCE)
    try:
        timing = task.timing
        flush = session.flush_buffer() if timing.flush_l2 else None
        if flush and timing.l2_flush_by == "read":
            res.warnings.append("timing.l2_flush_by='read' is not available on the native backends (they evict L2 "
                                "with a memset, i.e. 'write'); leave it unset or set 'write' to silence this")
        if timing.placements > 1:
            res.warnings.append(f"timing.placements={timing.placements} is not available on the native backends (they "
                                "time one copy of the inputs); leave it at 1 to silence this")
        method = (f"{dialect.name} events on a stream"
                  + (f", L2 flushed by a {FLUSH_BYTES >> 20} MiB memset between repetitions" if flush else ""))

        def device_time(run, buffers: Buffers):
            # Outputs are poisoned before every repetition (outside its events) and checked after the last:
            # a kernel that computes once and then skips the work (a device-side "done" flag) fails here.
            samples = timed_samples(session.binding, session.stream, run, timing.warmup, timing.repetitions,
                                    timing.min_time_ms, timing.max_repetitions, flush, before=buffers.poison_outputs,
                                    warmup_ms=timing.warmup_ms)
            session.binding.synchronize(session.stream, context="after the timed repetitions")
            got = buffers.read_outputs()
            _c, failure = compare_outputs([g.as_float() for g in got], [r.as_float() for r in refs],
                                          task.tolerance, [g.dtype for g in got], [r.dtype for r in refs])
            if failure is not None:
                raise CandidateError(ErrorKind.REWARD_HACK, "outputs were wrong after the timed repetitions "
                                     f"({failure[1]}): every launch must compute the result, not reuse an "
                                     "earlier launch's work")
            return summarize(samples, method)

        res.candidate_timing = device_time(run, bufs)
        res.baseline, res.baseline_timing = _baseline(session, task, ref, raw, inputs, refs, bufs, device_time, res)
        res.speedup = speedup(res.baseline_timing, res.candidate_timing)
    except CandidateError as e:
        return _free_and(bufs, res.fail(Stage.PERFORMANCE, e.kind, e.message, e.line))
    except DeviceFault as e:
        return _fault(res, Stage.PERFORMANCE, str(e))
    except NativeError as e:
        if e.sticky or e.call in ("stream_synchronize", "event_synchronize", "event_elapsed_time"):
            return _fault(res, Stage.PERFORMANCE, str(e))
        return _free_and(bufs, res.fail(Stage.PERFORMANCE, ErrorKind.RUNTIME, str(e)))
    res.stage, res.status = Stage.PERFORMANCE, Status.OK
    return _free_and(bufs, res)


def _baseline(session, task, ref, raw, inputs, refs, bufs, device_time, res):
    """(label, timing): the task's naive native kernel when it ships one and it works, else the host reference."""
    src = ref.native_baseline(session.dialect.name)
    if src is not None:
        base_bufs = None
        try:
            base = parse_candidate(src)
            loaded = load_candidate(session, base, task.timeouts.compile)
            base_bufs = Buffers(session, inputs, refs, ref.params)
            run = prepare_runs(session, loaded, _plan(base, ref, inputs, refs), base_bufs)
            base_bufs.poison_outputs()
            run_once(session, run)
            got = base_bufs.read_outputs()
            _checks, failure = compare_outputs([g.as_float() for g in got], [r.as_float() for r in refs],
                                               task.tolerance, [g.dtype for g in got], [r.dtype for r in refs])
            if failure is None:
                return f"the task's naive {session.dialect.name} kernel ({BASELINE_NAME})", device_time(run, base_bufs)
            res.warnings.append(f"{BASELINE_NAME} is wrong ({failure[1]}); timing the host reference instead")
        except (CandidateError, CompileError, NativeError) as e:
            if isinstance(e, NativeError) and e.sticky:
                raise
            res.warnings.append(f"{BASELINE_NAME} unusable ({e}); timing the host reference instead")
        finally:
            if base_bufs is not None:
                base_bufs.free()
    samples = []
    budget = time.perf_counter() + 2.0
    ref.forward(raw)  # warm-up
    while len(samples) < max(3, min(task.timing.repetitions, 50)) and (len(samples) < 3 or time.perf_counter() < budget):
        t0 = time.perf_counter()
        ref.forward(raw)
        samples.append((time.perf_counter() - t0) * 1e3)
    return "the task's reference on the host CPU", summarize(samples, "host wall clock (perf_counter)")


def _free_and(bufs: Optional[Buffers], res: EvalResult) -> EvalResult:
    if bufs is not None:
        bufs.free()
    return res


def _fault(res: EvalResult, stage: Stage, message: str) -> EvalResult:
    """A kernel fault: the context is poisoned, so nothing is freed; the worker is recycled after this verdict."""
    return res.fail(stage, ErrorKind.DEVICE_FAULT, "the candidate's kernel faulted on the device (out-of-bounds "
                    f"access, illegal instruction or similar): {message}")


def _infra(res: EvalResult, stage: Stage, message: str) -> EvalResult:
    res.fail(stage, ErrorKind.INFRA, message)
    res.status = Status.INFRA_ERROR
    res.message = trim_message(message)
    return res
