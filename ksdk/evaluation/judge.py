"""The judge: the one verdict loop for every backend. It holds the task, the inputs' seeds, the reference outputs,
the comparison, the anti-cheating policy, the timing and the speedup; it never imports or calls candidate code. The
candidate runs in its own sandboxed process (ksdk/evaluation/candidate.py), reached through a Link, with inputs and
outputs in shared memory.

Stages: load (here: the reference, trial 0, the fit on the device; there: the candidate imported), compile,
correctness (ksdk/evaluation/correctness.py), performance (ksdk/evaluation/performance.py: the judge's own clock).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from ksdk.evaluation import clock, memwatch
from ksdk.evaluation.device_lock import DeviceLock
from ksdk.evaluation.link import Link, span
from ksdk.evaluation.memwatch import MemoryWatch
from ksdk.evaluation.protocol import Build, Load, Setup
from ksdk.evaluation.report_checks import ReportChecks
from ksdk.evaluation.sandboxed import StartError
from ksdk.evaluation.spares import Pool
from ksdk.evaluation.shared import Layout, Region, Slot
from ksdk.evaluation.targets import Target
from ksdk.evaluation.trial import Trials, starved
from ksdk.evaluation.verdict import DOES_NOT_FIT, Verdict, out_of_memory
from ksdk.interfaces.backend import Backend, RunContext
from ksdk.models import DeviceInfo, ErrorKind, EvalResult, Stage, Status, Task

SLOWER_THAN_REFERENCE = 20.0  # stage limits assume a candidate call may take this many reference calls' time
INTERPRETER_MAX_ELEMENTS = 1 << 21  # input elements an interpreter run handles in seconds, not minutes
EXCLUSIVE_IO_BYTES = 4 << 30  # a problem this large (3x it + 1 GiB is its bound) never shares the device
RELEASE_WAIT_S = 5.0  # how long an evaluation waits for the previous one's device memory to be given back


@dataclass
class JudgeContext:
    """What the judge's process hands the judge for one evaluation."""

    backend: Backend
    run: RunContext
    pool: Pool
    on_stage: Callable[[Stage, float], None] = lambda stage, limit: None
    skip_performance: bool = False
    sandboxed: bool = True
    device: Optional[DeviceInfo] = None  # what the backend's probe says of this device
    fallback: Optional[str] = None  # what the probe says runs without a device (e.g. Triton's interpreter)
    target: Optional[Target] = None  # the judge process's Target (made once: it keeps buffers for its whole life)
    lock: Optional[DeviceLock] = None  # the device's lock among judges (ksdk/evaluation/device_lock.py)
    on_wait: Callable[[bool], None] = lambda waiting: None  # told before and after waiting for the lock


def evaluate(task: Task, candidate, jc: JudgeContext) -> EvalResult:
    """The verdict on `candidate`. Never raises for anything the candidate did."""
    return Evaluation(task, candidate, jc).run()


class Evaluation:
    """The state of one evaluation, shared by its stages."""

    def __init__(self, task: Task, candidate, jc: JudgeContext):
        self.task, self.cand, self.jc, self.backend = task, candidate, jc, jc.backend
        self.result = EvalResult(candidate_id=candidate.id, task=task.name, backend=self.backend.name,
                                 backend_version=self.backend.version)
        self.limits = task.timeouts.model_copy()
        self.target = jc.target or self.backend.target(jc.run)
        self.trials: Optional[Trials] = None
        self.link: Optional[Link] = None
        self.regions: list[Region] = []
        self.peaks: dict[str, int] = {}
        self.io: Optional[Region] = None
        self.first = None
        self.ref_ms = float("inf")
        self.ref_scratch = 0
        self.stochastic = False
        self.cand_floor = clock.Floor()
        self.io_bytes = (0, 0)
        self.params: list[Slot] = []
        self.params_region: Optional[Region] = None
        self.checks = ReportChecks(str(getattr(self.backend.language, "name", self.backend.language)),
                                   self.backend.requires_kernels and not task.allows_any_torch, task.allow_torch_ops,
                                   on_device=self.target.kind != "host" and self.backend.requires_kernels)
        self._marks: list[tuple[str, float]] = []
        self.running: list[str] = []  # the judge's and its link's spans now running (a record of where memory peaks)
        self.spans: dict[str, float] = {}  # seconds per part of the evaluation (the link adds its own)

    # -- the loop ----------------------------------------------------------------------------------------------
    def run(self) -> EvalResult:
        res = self.result
        lock = self.jc.lock if self.target.kind != "host" else None
        if lock is not None:
            self._hold(lock.shared)
        watch = self._watch_memory()
        t0 = time.perf_counter()
        try:
            self._load()
            self._compile()
            from ksdk.evaluation import correctness, performance

            correctness.run(self)
            performance.run(self)
            res.status, res.error_kind = Status.OK, None
        except Verdict as v:
            res.fail(v.stage, v.kind, v.message, v.line)
            if v.kind == ErrorKind.INFRA:
                res.status = Status.INFRA_ERROR
        except Exception as e:  # noqa: BLE001 - only the judge's own out-of-memory is judged here
            if not (self.trials is not None and self.trials.candidate_ran and out_of_memory(e)):
                raise
            res.fail(self._stage(), ErrorKind.OOM, starved(e, sum(self.io_bytes)))
        finally:
            with self._span("teardown"):
                self._release()
            if watch is not None:
                self.peaks["device_peak_memory"] = watch.stop()
                parts = memwatch.growth(watch.first_detail, watch.at_peak)
                if parts is not None:  # whose memory the peak was, above each one's at the start (bytes)
                    res.device.extra["device_peak_by_role"] = parts
                if watch.where_at_peak:
                    res.device.extra["device_peak_during"] = watch.where_at_peak
            if lock is not None:
                lock.release()
            self._stages(time.perf_counter() - t0)
        res.warnings += [w for w in self.checks.warnings if w not in res.warnings]
        if self.peaks:
            res.device.extra.update({f"{k}_bytes": v for k, v in self.peaks.items()})
        return res

    def exclusive(self) -> None:
        """From here this evaluation has the device to itself (other judges on it wait): before timing."""
        if self.jc.lock is None or self.target.kind == "host":
            return
        self.target.synchronize()
        self._hold(self.jc.lock.exclusive)

    def _hold(self, take: Callable[[], None]) -> None:
        """Take the device's lock; the wait (another judge's timing) is counted in no stage's time limit."""
        self.jc.on_wait(True)
        try:
            with self._span("device lock"):
                take()
        finally:
            self.jc.on_wait(False)

    def _stage(self) -> Stage:
        return self.link.stage if self.link is not None else Stage.LOAD

    def enter(self, stage: Stage, limit: float) -> None:
        """A stage starts: the link's deadline, the driver told, the breakdown marked."""
        self.result.stage = stage
        if self.trials is not None:
            self.trials.stage = stage
        self._marks.append((stage.value, time.perf_counter()))
        if self.link is not None:
            self.link.enter(stage, limit)
        else:
            self.jc.on_stage(stage, limit)

    @contextlib.contextmanager
    def _span(self, name: str) -> Iterator[None]:
        with span(self.spans, self.running, name):
            yield

    def _stages(self, total: float) -> None:
        """EvalResult.stages: seconds per stage and, within them, the parts the link timed."""
        stages: dict[str, float] = {}
        marks = self._marks + [("end", self._marks[0][1] + total if self._marks else 0.0)]
        for (name, t), (_n, t_next) in zip(marks, marks[1:]):
            stages[name] = round(stages.get(name, 0.0) + max(0.0, t_next - t), 6)
        stages.update({k: round(v, 6) for k, v in self.spans.items()})
        if self.link is not None and self.link.proc is not None:
            stages["process start (ahead of need)"] = round(self.link.proc.ready_s or 0.0, 6)
        self.result.stages = stages

    # -- memory ------------------------------------------------------------------------------------------------
    def region(self, name: str, size: int) -> Region:
        """Shared memory released when the evaluation ends."""
        region = self.memory.allocate(name, size)
        self.regions.append(region)
        return region

    def drop_io(self) -> None:
        """The trial's shared memory goes (and `io` with it)."""
        if self.io is not None and self.io in self.regions:
            self.regions.remove(self.io)
            self.io.close()
        self.io = None

    def specs(self, args: list[dict]) -> list[dict]:
        return [{"shape": a["slot"]["shape"], "dtype": a["slot"]["dtype"]} if "slot" in a
                else {"value": a.get("value")} for a in args]

    def param_views(self) -> list:
        return [self.params_region.view(s) for s in self.params] if self.params_region is not None else []

    def _watch_memory(self) -> Optional[MemoryWatch]:
        """Sample the device's memory in use from a clean slate: the previous evaluation's memory given back (its
        candidate's process may still be exiting), the judge's cached blocks returned."""
        if self.target.kind == "host":
            return None
        self.target.prepare()
        self.target.release_cached()
        used = lambda: self.backend.memory_used(self.jc.run)  # noqa: E731
        _wait_released(used)
        watch = MemoryWatch.start(used, lambda: memwatch.by_role(self.backend.memory_by_process(self.jc.run),
                                                                 self._candidate_pids()), self._doing)
        if watch is not None:  # what earlier evaluations (or other processes) still hold: a leak shows here
            self.peaks["device_in_use_at_start"] = int(watch.first)
        return watch

    def _doing(self) -> str:
        """What the evaluation is doing now: its stage and the innermost running span, the judge's or its link's
        (a record)."""
        stage = self._marks[-1][0] if self._marks else "load"
        inner = self.running[-1] if self.running else ""
        return f"{stage}: {inner}" if inner else stage

    def _candidate_pids(self) -> set[int]:
        """The candidate's processes now (none before its process is handed out)."""
        box = getattr(self.link.proc, "box", None) if self.link is not None else None
        return set(box.pids()) if box is not None else set()

    def _release(self) -> None:
        if self.link is not None:
            self.link.proc.close()
        for r in self.regions:
            r.close()
        self.regions.clear()
        self.io = self.first = self.params_region = None
        if self.trials is not None:
            self.trials.close()
        self.target.release_cached()

    # -- load and compile ------------------------------------------------------------------------------------------
    def _load(self) -> None:
        run, res = self.jc.run, self.result
        self.enter(Stage.LOAD, self.limits.load)
        try:
            res.versions = dict(self.backend.versions())
        except Exception:  # noqa: BLE001 - versions are a record, not a verdict
            pass
        res.device = _device_info(self.target, run, self.jc.device)
        overrides = dict(self.task.interpreter) if run.interpret else {}
        with self._span("reference"):
            self.trials = trials = Trials(self.task, self.target, overrides)
            elements = trials.ref.input_elements()
            self._interpretable(elements)  # before a large problem's inputs are made on the CPU
            if elements is not None and elements * 4 > EXCLUSIVE_IO_BYTES // 2:  # before its inputs are made
                self.exclusive()
            raw, self.first = trials.make()
        self._interpretable(sum(int(x.numel()) for x in raw if hasattr(x, "numel")))
        self._scale_limits(self.first.ref_s)
        self.ref_ms = self.first.ref_s * 1e3
        self.ref_scratch = self.first.scratch  # the reference's temporaries (bytes): the timed batch's arena holds them
        self.stochastic = self.first.stochastic
        layout = Layout("io")
        self.args, self.outs = trials.layout(layout, raw, self.first.refs)
        self.io_bytes = (sum(Slot.model_validate(a["slot"]).nbytes for a in self.args if "slot" in a),
                         sum(o.nbytes for o in self.outs))
        self.peaks["inputs_outputs"] = sum(self.io_bytes)
        if sum(self.io_bytes) > EXCLUSIVE_IO_BYTES:
            self.exclusive()  # too large to share the device's memory with another judge's problem
        self.memory = self.backend.memory(run)
        self._fits(layout.size)
        with self._span("process hand-out"):
            try:
                proc = self.jc.pool.take()
            except StartError as e:
                raise Verdict(Stage.LOAD, ErrorKind.INFRA, str(e)) from None
        self.link = link = Link(proc, self.jc.on_stage, self.task.timeouts.compile, self.jc.sandboxed, self.spans,
                                     self.running)
        link.stage, link.limit, link.deadline = Stage.LOAD, self.limits.load, time.monotonic() + self.limits.load
        if self.backend.needs_params and trials.ref.params:
            lay = Layout("params")
            self.params = [lay.add(list(p.shape), str(p.dtype).replace("torch.", "")) for p in trials.ref.params]
            self.params_region = self.region("params", lay.size)
            for slot, p in zip(self.params, trials.ref.params):
                self.params_region.tensor(slot).copy_(p)
            link.send_region(self.params_region)
        self.io = self.region("io", layout.size)
        trials.write(self.io, self.args, raw)
        del raw
        link.send_region(self.io)
        task = {"name": self.task.name, "source": self.task.source, "seed": self.task.seed,
                "init_inputs": trials.ref.json_init_inputs(), "inputs": self.specs(self.args),
                "outputs": [{"shape": o.shape, "dtype": o.dtype} for o in self.outs], "overrides": overrides}
        try:
            with link.span("setup"):
                link.request(Setup(task=task, params=[{"slot": s.model_dump()} for s in self.params]))
                if not run.interpret:
                    held = self.jc.pool.held() if self.target.kind != "host" else contextlib.nullcontext()
                    with held:  # on a device, measured as the timed batches will be: no spare starting beside (on
                        # the host a held start made tiny calls' figures less steady: 1 in 8 kit runs, none without)
                        self.cand_floor = clock.candidate_floor(link, self.target, lambda: clock.before_batch(self))
        except Verdict as v:  # no candidate code has run yet: the backend cannot run this task here
            raise Verdict(Stage.LOAD, ErrorKind.INFRA, f"backend {self.backend.name} cannot run this task: "
                          f"{v.message}") from None
        trials.candidate_ran = True  # from here the candidate's code runs, and may hold the device's memory
        with link.span("load"):
            link.request(Load(source=self.cand.source))

    def _interpretable(self, n: Optional[int]) -> None:
        """In an interpreter a large problem takes minutes a call: say so in one line, with the fix."""
        if not self.jc.run.interpret or n is None or n <= INTERPRETER_MAX_ELEMENTS:
            return
        raise Verdict(Stage.LOAD, ErrorKind.INFRA, f"the problem is too large for the interpreter ({n:,} input "
                      f"elements; it finishes about {INTERPRETER_MAX_ELEMENTS:,} in reasonable time): give the task a "
                      "smaller size for it, KSDK_TASK = {\"interpreter\": {\"SHAPE\": [256, 256]}} (the module-level "
                      "names its get_inputs() reads), or evaluate on a device")

    def _scale_limits(self, ref_s: float) -> None:
        """Stage limits grow with the measured reference time (a 6 GiB softmax is not a 64x384 one)."""
        calls = self.task.correctness_trials + 2
        self.limits.correctness = max(self.limits.correctness, calls * (SLOWER_THAN_REFERENCE + 2) * ref_s)
        from ksdk.evaluation.performance import MAX_ROUNDS

        timed = MAX_ROUNDS * 2 * 64 + 64  # rounds of batches (a batch lasts about 8-20 ms at the baseline's speed)
        self.limits.performance = max(self.limits.performance, timed * (SLOWER_THAN_REFERENCE + 2) * ref_s)

    def _fits(self, shared_bytes: int) -> None:
        """A problem that cannot fit in free device memory is told so, with the figures, before any candidate runs:
        the shared slots, the judge's reference outputs and the candidate's own outputs."""
        free = self.memory.free_bytes()
        if free is None:
            return
        ins, outs = self.io_bytes
        need = shared_bytes + 2 * outs + (256 << 20)
        if need > free:
            raise Verdict(Stage.LOAD, ErrorKind.INFRA, f"{DOES_NOT_FIT}: the problem needs about {need / 2**30:.1f} "
                          f"GiB more device memory (inputs {ins / 2**30:.2f} GiB, outputs {outs / 2**30:.2f} GiB, "
                          f"shared with the candidate, the references and the candidate's own outputs) but "
                          f"{free / 2**30:.1f} GiB is free: use a device with more memory or shrink the task's "
                          "get_inputs()")

    def _compile(self) -> None:
        self.enter(Stage.COMPILE, self.limits.compile)
        t = time.monotonic()
        with self.link.span("compile"):
            reply = self.link.request(Build())
        self.link.compile_credit[0] = max(0.0, self.link.compile_credit[0] - (time.monotonic() - t))
        self.result.kernels = list(reply.kernels or [])[:64]


def _wait_released(used: Callable[[], Optional[int]]) -> None:
    """Wait (at most RELEASE_WAIT_S) until the device's memory in use stops falling: an ended candidate's process
    gives its memory back as its context is torn down, after the process is gone."""
    end = time.monotonic() + RELEASE_WAIT_S
    try:
        last = used()
        while last is not None and time.monotonic() < end:
            time.sleep(0.05)
            now = used()
            if now is None or now >= last:
                return
            last = now
    except Exception:  # noqa: BLE001 - a record, never a verdict
        return


def _device_info(target, run: RunContext, probed: Optional[DeviceInfo]) -> DeviceInfo:
    if run.interpret:
        import platform

        return DeviceInfo(index=run.device, name=f"interpreter on {platform.processor() or 'CPU'}", kind="interpreter")
    if probed is not None:
        return probed.model_copy(update={"index": run.device})
    return target.info(run.device)
