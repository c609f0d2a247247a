"""The Triton Runner: the primitives ksdk's judge calls in the candidate's sandboxed process. It imports the
candidate, builds ModelNew, calls it on inputs the judge shares, and times it with CUDA events. What it reports
is a claim; checks here (launch counting, aliasing, integrity of what the harness relies on, the PyTorch ops a
forward runs) only ever incriminate the candidate, and the judge verifies outputs and time itself.
"""

from __future__ import annotations

import os
import platform
import threading
from typing import Any, Optional

from ksdk.interfaces.backend import CallReport, CandidateError, RunContext, Runner, TaskView
from ksdk.models import ErrorKind, KernelMeta, TimingSettings
from ksdk_triton_nvidia.batch import BatchMixin

VERSION = "0.1.0"


def set_mode(interpret: bool) -> None:
    """Pick Triton's interpreter or the GPU compiler; read by triton.knobs.runtime.interpret when a
    @triton.jit decorator runs, i.e. when the candidate is imported, so this must come first."""
    os.environ["TRITON_INTERPRET"] = "1" if interpret else "0"
    import sys

    if "triton" in sys.modules:  # imported earlier in this process: set the knob as well
        sys.modules["triton"].knobs.runtime.interpret = interpret


_RECORDER = None


def recorder(interpret: bool):
    """The process-wide launch recorder (installed once per process)."""
    global _RECORDER
    if _RECORDER is None:
        from ksdk_triton_nvidia.launches import LaunchRecorder

        _RECORDER = LaunchRecorder(interpret)
        _RECORDER.install()
    return _RECORDER


def warm_up(interpret: bool) -> None:
    """Import torch and Triton and install the launch hook: what a candidate's process would otherwise pay at its
    start, paid while it waits as a spare. No CUDA context is created here: on the H200 that (with Triton's driver
    utilities) made each spare take about 6 s to start, longer than an evaluation, and the throughput fell from
    25.9 to under 15 candidates a minute (docs/benchmarks.md)."""
    set_mode(interpret)
    import torch
    import triton  # noqa: F401

    with OpRecorder():  # its first use imports torch._dynamo (1-2 s, once paid in every evaluation's setup), which
        torch.zeros(1) + 1  # wraps torch.manual_seed: before the snapshot `load` takes; on the CPU, no context
    recorder(interpret)
    if not interpret:
        from ksdk_triton_nvidia import kernel_log, seed

        seed.record()  # the launchers this process makes, for the judge's seed cache
        kernel_log.start()  # CUPTI's record of launches, before any candidate code (no context); a failure is reported
    from ksdk.evaluation import timers  # noqa: F401 - private timing references, taken before any candidate


def versions(interpret: bool) -> dict[str, str]:
    """Versions that make a result reproducible (from package metadata: triton must not be imported before the
    interpreter mode is set)."""
    from importlib.metadata import PackageNotFoundError, version

    v = {"python": platform.python_version(), "ksdk_triton_nvidia": VERSION}
    for pkg in ("torch", "triton", "numpy"):
        try:
            v[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    if interpret:
        v["mode"] = "triton interpreter (TRITON_INTERPRET=1)"
    return v


class OpRecorder:
    """Records the aten ops a call runs on this thread (a TorchDispatchMode), reached directly or through nn
    modules and Tensor methods."""

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        ops: list[str] = []

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                ops.append(func._schema.name)
                return func(*args, **(kwargs or {}))

        self.ops, self.mode = ops, _Mode()

    def __enter__(self) -> "OpRecorder":
        self.mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.mode.__exit__(*exc)


class TritonRunner(BatchMixin, Runner):
    """One Triton candidate in its own process."""

    def __init__(self, ctx: RunContext):
        import torch

        from ksdk_triton_nvidia.loading import SourceFiles

        self.ctx = ctx
        set_mode(ctx.interpret)
        self.files = SourceFiles()
        self.device = torch.device("cpu") if ctx.interpret else torch.device("cuda", 0)
        self.rec = recorder(ctx.interpret)
        self.module = self.new = None
        self.keep: list = []  # the previous call's outputs stay alive: fresh allocations can never reuse them
        self.kernels_reported = False
        self.timer = None
        self.placed: dict[int, list] = {}
        self._graphs: list = []
        self._batch: tuple[list, list] = ([], [])
        self._arena = None  # the timed batch's pool in judge-visible memory (ksdk_triton_nvidia.arena)
        self._kept: list = []  # the batch's outputs, alive until the next batch
        self._placed: Optional[list[list[int]]] = None

    # -- load and build ----------------------------------------------------------------------------
    def setup(self, task: TaskView) -> None:
        import torch

        from ksdk_triton_nvidia import checks, diagnose, kernel_log, launches, loading, metadata, tensors

        self.task = task
        if not self.ctx.interpret:
            torch.cuda.set_device(0)
        with OpRecorder():  # at once where warm_up did not run first (its first use imports torch._dynamo)
            torch.zeros(1) + 1
        self.task_module = loading.load_task_module(self.files, task.source)
        vars(self.task_module).update(task.overrides)
        self.init = list(self.task_module.get_init_inputs())
        self.poison = tensors.Poison(self.device)
        self.poison.sizes_from(task.outputs)
        from ksdk.evaluation import timers

        self.guarded = {"ksdk_triton_nvidia." + m.__name__.rsplit(".", 1)[-1]: m
                        for m in (checks, diagnose, kernel_log, launches, loading, metadata, tensors)}
        self.guarded.update({"runner": __import__(__name__, fromlist=["x"]), "timers": timers,
                             "Timer": timers.Timer, "LaunchRecorder": launches.LaunchRecorder,
                             "KernelLog": kernel_log.KernelLog, "TritonRunner": TritonRunner})

    def load(self, source: str) -> None:
        from ksdk_triton_nvidia import checks, diagnose, loading

        checks.settle_torch(source, False)
        self.integrity = checks.new_integrity(self.guarded)
        self.threads = set(threading.enumerate())
        try:
            self.module, self.path = loading.load_candidate(self.files, source)
        except loading.LoadFailure as f:
            raise CandidateError(f.kind, f.message, f.line) from None
        self.source = source
        self.kernel_names = diagnose.kernel_names(self.module)
        self._integrity("importing the candidate module")

    def build(self) -> list[KernelMeta]:
        import torch

        from ksdk_triton_nvidia import diagnose

        try:
            torch.manual_seed(self.task.seed)
            self.new = self.module.ModelNew(*self.init).to(self.device)
        except Exception as e:  # noqa: BLE001 - the candidate's constructor
            kind, msg, line = diagnose.classify(e, self.path, self.source, self.kernel_names, False,
                                                self.ctx.interpret)
            raise CandidateError(kind, "ModelNew(*get_init_inputs()) raised " + msg, line) from None
        self._integrity("building ModelNew")
        return []

    def _problems(self, when: str) -> list[str]:
        bad = self.integrity.changed() + self.rec.intact()
        out = []
        if bad:
            out.append(f"{when} replaced what the harness relies on: {', '.join(sorted(bad)[:8])}. Candidates must "
                       "not monkeypatch torch, timing, streams, seeds or Triton's launch hooks")
        extra = [t for t in threading.enumerate() if t not in self.threads and t.is_alive()]
        if extra:
            out.append(f"{when}: the candidate runs Python threads ({', '.join(t.name for t in extra[:3])}): "
                       "forward must compute on the calling thread")
        return out

    def _integrity(self, when: str) -> None:
        problems = self._problems(when)
        if problems:
            raise CandidateError(ErrorKind.REWARD_HACK, problems[0])

    # -- calls -----------------------------------------------------------------------------------
    def _forward(self, inputs: list, first: bool) -> Any:
        import torch

        from ksdk.evaluation import timers
        from ksdk_triton_nvidia import diagnose

        if first and self.ctx.on_compile is not None:
            self.rec.on_compile = self.ctx.on_compile
        try:
            with torch.no_grad():
                out = self.new(*inputs)
            if not self.ctx.interpret:
                timers.synchronize()  # asynchronous device faults surface here, attributed to this call
        except Exception as e:  # noqa: BLE001 - the candidate's forward
            kind, msg, line = diagnose.classify(e, self.path, self.source, self.kernel_names, first,
                                                self.ctx.interpret)
            raise CandidateError(kind, msg, line) from None
        finally:
            self.rec.on_compile = None
        return out

    def call(self, inputs: list, outputs: list, record_ops: bool = False) -> CallReport:
        from ksdk_triton_nvidia import checks, kernel_log, metadata, tensors

        first = not self.kernels_reported
        self.poison()
        self.rec.window()
        kernel_log.LOG.window()
        ops = None
        started: list[str] = []  # Python threads the forward started (work there escapes the op recorder)
        main = threading.get_ident()

        def note(frame, event, arg):
            if threading.get_ident() != main:
                started.append(threading.current_thread().name)
                import sys

                sys.setprofile(None)

        threading.setprofile(note)
        try:
            if record_ops:
                with OpRecorder() as r:
                    out = self._forward(inputs, first)
                ops = r.ops
            else:
                out = self._forward(inputs, first)
        finally:
            threading.setprofile(None)
            seen = kernel_log.LOG.since()
            kernel_log.LOG.pause()
        flat = tensors.flatten(out)
        report = CallReport(launches=self.rec.count, torch_ops=ops)
        report.kernels_seen, report.kernel_record, report.kernel_record_lost = kernel_log.LOG.fields(
            seen, [launch.name for launch in self.rec.hooked])
        if first and not self.ctx.interpret:
            from ksdk_triton_nvidia import seed

            report.seed_requests = seed.drain()
        report.problems += self._problems("the candidate's forward")
        if started:
            report.problems.append(f"the candidate's forward started Python threads ({', '.join(started[:3])}): "
                                   "forward must compute on the calling thread")
        for problem in (checks.aliasing_problem(flat, inputs), checks.reuse_problem(flat, tensors.storages(self.keep))):
            if problem:
                report.problems.append(problem)
        report.written_by_kernels = checks.unwritten_problem(flat, list(self.rec.storages)) is None
        if first:
            self.kernels_reported = True
            report.kernels = (metadata.from_compiled(self.rec.functions) if not self.ctx.interpret
                              else metadata.from_launches(list(self.rec.runs)))
        self._store(flat, outputs, report)
        self.keep = flat
        return report

    @staticmethod
    def _store(flat: list, outputs: list, report: CallReport) -> None:
        """Write the candidate's outputs into the judge's slots where shape and dtype match (the judge compares)."""
        import torch

        for k, o in enumerate(flat):
            t = o.detach() if isinstance(o, torch.Tensor) else torch.as_tensor(o)
            report.outputs.append((list(t.shape), str(t.dtype).replace("torch.", "")))
            if k < len(outputs) and tuple(t.shape) == tuple(outputs[k].shape) and t.dtype == outputs[k].dtype:
                outputs[k].copy_(t)

    def _timing_inputs(self, inputs: list, settings: TimingSettings, turn: int) -> list:
        """The inputs, or with timing.placements > 1 the copy of them at placement turn % placements."""
        from ksdk.evaluation import timers

        n = settings.placements
        if n <= 1:
            return inputs
        k = turn % n
        if k not in self.placed:
            self.placed[k] = timers.placed_inputs(inputs, self.device, k)
        return self.placed[k]

    def time(self, inputs: list, outputs: list, settings: TimingSettings, share: float, warmup: Optional[int],
             turn: int = 0) -> tuple[list[float], CallReport]:
        import torch

        from ksdk.evaluation import timers
        from ksdk_triton_nvidia import tensors

        if self.timer is None:
            self.timer = timers.Timer(settings, self.device)
        ins = self._timing_inputs(inputs, settings, turn)
        self.rec.window()
        try:
            with torch.no_grad(), self.rec.unheld():
                m = self.timer.measure(lambda: self.new(*ins), side_streams=lambda: self.rec.streams, share=share,
                                       warmup=warmup)
        except Exception as e:  # noqa: BLE001
            raise CandidateError(ErrorKind.RUNTIME, f"forward failed while timed: {type(e).__name__}: {e}") from None
        report = CallReport(launches=self.rec.count // max(1, m.calls), method=self.timer.method)
        report.problems += self._problems("the candidate's forward during timing")
        self._store(tensors.flatten(m.last_output), outputs, report)
        if settings.placements > 1:
            k = turn % settings.placements
            report.cross_checks[timers.placement_label(k)] = list(m.samples_ms)
        if settings.cross_check_do_bench and turn == timers.rounds(settings.placements) - 1:
            report.cross_checks.update(self._do_bench(ins))
        if not self.ctx.interpret:
            report.peak_memory_bytes = int(torch.cuda.max_memory_allocated())
        return m.samples_ms, report

    def _do_bench(self, ins: list) -> dict[str, list[float]]:
        """The same calls timed again by triton.testing.do_bench, on the same buffers and eviction (a record)."""
        import triton.testing

        from ksdk.evaluation.timers import do_bench_eviction

        try:
            with self.rec.unheld(), do_bench_eviction(self.timer.flush_by):
                try:
                    samples = triton.testing.do_bench(lambda: self.new(*ins), warmup=25, rep=100, return_mode="all")
                except AssertionError:  # an older Triton without return_mode="all": its median alone
                    samples = [triton.testing.do_bench(lambda: self.new(*ins), warmup=25, rep=100,
                                                       return_mode="median")]
            return {"do_bench": [float(x) for x in samples]}
        except Exception:  # noqa: BLE001 - a record, not a verdict
            return {}

    def close(self) -> None:
        from ksdk_triton_nvidia.loading import forget

        for m in (self.module, getattr(self, "task_module", None)):
            if m is not None:
                forget(m)
        self.files.cleanup()
