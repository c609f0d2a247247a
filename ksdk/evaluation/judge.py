"""The judge: the one verdict loop for every backend. It holds the task, the inputs' seeds, the reference outputs,
the comparison, the anti-cheating policy, the timing statistics and the speedup; it never imports or calls
candidate code. The candidate runs in its own sandboxed process (ksdk/evaluation/candidate.py), which receives
inputs in shared memory, writes outputs there and reports raw measurements; the judge checks them.

Stages: load (reference here, candidate parsed or imported there), compile, correctness (trials on fresh inputs,
each reference computed here before the candidate sees the inputs; input mutation, cached results, PyTorch doing
the work), performance (baseline timed here, candidate there, in alternating rounds; then a batch of back-to-back
calls timed by the judge's own clock whose outputs it spot-checks: a reported time below that bound is a
reward_hack verdict naming both figures).
"""

from __future__ import annotations

import math
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ksdk.evaluation import frames, policy, redact
from ksdk.evaluation.memwatch import MemoryWatch
from ksdk.evaluation.reference import Reference, TaskFailure, as_tensor
from ksdk.evaluation.sandboxed import Died, Overrun, Pool, StartError
from ksdk.evaluation.shared import Layout, Region, Slot
from ksdk.interfaces.backend import Backend, RunContext, TaskView
from ksdk.models import (Candidate, DeviceInfo, ErrorKind, EvalResult, KernelMeta, Model, OutputCheck, Stage, Status,
                         Task, TimingStats)
from ksdk.timing import speedup, summarize
from ksdk.verify import compare_outputs

ROUNDS = 5  # baseline and candidate alternate this many times
SLOWER_THAN_REFERENCE = 20.0  # stage limits assume a candidate call may take this many reference calls' time
RING_BUDGET_BYTES = {"cuda": 4 << 30, "host": 1 << 30}  # shared memory for the judge-clocked batch's input and
# output sets (also at most a quarter of what is free on the device)
COMPARE_CHUNK = 1 << 24  # elements compared at a time (bounds the comparison's temporary memory)
INTERPRETER_MAX_ELEMENTS = 1 << 21  # input elements an interpreter run handles in seconds, not minutes
PLACEMENT_WARN = 0.03  # with timing.placements > 1: warn when the candidate's medians differ this much


class Verdict(Exception):
    """Ends the evaluation: the stage, the error kind, a message for the author (or LLM), the candidate's line."""

    def __init__(self, stage: Stage, kind: ErrorKind, message: str, line: Optional[int] = None):
        super().__init__(message)
        self.stage, self.kind, self.message, self.line = stage, kind, message, line


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


class Report(Model):
    """A candidate process's report of one call, as the judge accepts it."""

    outputs: list[tuple[list[int], str]] = []
    launches: Optional[int] = None
    torch_ops: Optional[list[str]] = None
    problems: list[str] = []
    compile_s: float = 0.0
    cross_checks: dict[str, list[float]] = {}
    peak_memory_bytes: Optional[int] = None
    written_by_kernels: Optional[bool] = None
    kernels: list[KernelMeta] = []
    method: str = ""
    warnings: list[str] = []
    seed_requests: list[Any] = []


class Reply(Model):
    """Every field a candidate process may put in a reply; anything else is a malformed message."""

    op: str
    ok: bool
    kind: Optional[str] = None
    message: Optional[str] = None
    line: Optional[int] = None
    unexpected: Optional[bool] = None
    report: Optional[Report] = None
    samples: Optional[list[float]] = None
    kernels: Optional[list[KernelMeta]] = None
    mode: Optional[str] = None


def evaluate(task: Task, candidate: Candidate, jc: JudgeContext) -> EvalResult:
    """The verdict on `candidate`. Never raises for anything the candidate did."""
    return _Judge(task, candidate, jc).run()


class _Judge:
    def __init__(self, task: Task, candidate: Candidate, jc: JudgeContext):
        self.task, self.cand, self.jc = task, candidate, jc
        self.backend = jc.backend
        self.stage = Stage.LOAD
        self.result = EvalResult(candidate_id=candidate.id, task=task.name, backend=self.backend.name,
                                 backend_version=self.backend.version)
        self.proc = None
        self.regions: list[Region] = []
        self.rng = secrets.SystemRandom()
        self.limits = task.timeouts.model_copy()
        self.t0 = time.monotonic()
        self.stage_deadline = self.t0
        self.compile_credit = [float(task.timeouts.compile)]
        self.min_launches: Optional[int] = None
        self.peaks: dict[str, int] = {}
        self.candidate_ran = False

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> EvalResult:
        res = self.result
        watch = self._watch_memory()
        try:
            self._load()
            self._compile()
            self._correctness()
            self._performance()
            res.status, res.error_kind = Status.OK, None
        except Verdict as v:
            res.fail(v.stage, v.kind, v.message, v.line)
            if v.kind == ErrorKind.INFRA:
                res.status = Status.INFRA_ERROR
        except Exception as e:  # noqa: BLE001 - only the judge's own out-of-memory is judged here
            if not (self.candidate_ran and _out_of_memory(e)):
                raise
            res.fail(self.stage, ErrorKind.OOM, self._starved(e))
        finally:
            self._release()
            if watch is not None:
                self.peaks["device_peak_memory"] = watch.stop()
        if self.peaks:
            res.device.extra.update({f"{k}_bytes": v for k, v in self.peaks.items()})
        return res

    def enter(self, stage: Stage, limit: Optional[float] = None) -> None:
        """Start a stage: its deadline is set once, here (stages only move forward)."""
        self.stage = self.result.stage = stage
        limit = float(limit if limit is not None else self.limits.for_stage(stage))
        self.stage_deadline = time.monotonic() + limit
        self.stage_limit = limit
        self.jc.on_stage(stage, limit)

    def _starved(self, e: BaseException) -> str:
        """The verdict's message when the judge runs out of device memory while a candidate's process holds some:
        the problem fitted when the evaluation began (_fits), so the candidate took what the judge needed."""
        try:
            used = self.backend.memory_used(self.jc.run)
        except Exception:  # noqa: BLE001
            used = None
        io = sum(self.io_bytes)  # set before any candidate code ran
        held = f"{used / 2**30:.1f} GiB in use on the device, " if used else ""
        return (f"the judge ran out of device memory checking this candidate ({str(e).splitlines()[0][:160]}); "
                f"{held}for {io / 2**30:.2f} GiB of inputs and outputs, which fitted when the evaluation began: the "
                "candidate's process holds the memory the judge needs (free what forward allocates, and allocate "
                "no more than its outputs and temporaries need)")

    def _watch_memory(self) -> Optional[MemoryWatch]:
        """Start sampling the device's memory in use, from a clean slate: the judge's cached blocks returned and
        its peak statistics reset (they would otherwise carry an earlier, larger problem's figures)."""
        if self.backend.reference_device(self.jc.run).startswith("cuda"):
            import torch

            torch.cuda.init()  # the judge's own context is there before the first sample, not counted in the peak
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        return MemoryWatch.start(lambda: self.backend.memory_used(self.jc.run))

    def _release(self) -> None:
        if getattr(self, "ref", None) is not None:
            self.ref.close()
        if self.proc is not None:
            self.proc.close()
            self.proc = None
        for r in self.regions:
            r.close()
        self.regions.clear()

    # -- talking to the candidate's process ------------------------------------------------------
    def _request(self, msg: dict, compile_credit: bool = False, fds: tuple[int, ...] = ()) -> Reply:
        """One request with this stage's deadline; every way the process can misbehave becomes a Verdict."""
        try:
            raw = self.proc.request(msg, self.stage_deadline, self.compile_credit if compile_credit else None, fds)
        except TimeoutError:
            self.proc.kill()
            raise Verdict(self.stage, ErrorKind.TIMEOUT,
                          f"stage '{self.stage.value}' exceeded its {self.stage_limit:g} s limit; the candidate's "
                          "process and everything it started were killed") from None
        except Died as d:
            text = f"the candidate's process died during stage '{self.stage.value}' ({d.how})"
            if d.log:
                text += "\nlast output:\n" + self._redact(d.log)
            raise Verdict(self.stage, ErrorKind.CRASH, text) from None
        except Overrun as o:
            raise Verdict(self.stage, ErrorKind.CRASH, f"the candidate's process was ended: {o}") from None
        except frames.FrameError as e:
            self.proc.kill()
            raise Verdict(self.stage, ErrorKind.CRASH, f"the candidate's process sent a malformed message ({e}): "
                          "it wrote to the judge's channel") from None
        try:
            reply = Reply.model_validate(raw)
        except Exception as e:  # noqa: BLE001 - pydantic's ValidationError names the field
            self.proc.kill()
            raise Verdict(self.stage, ErrorKind.CRASH, "the candidate's process sent a malformed reply "
                          f"({str(e).splitlines()[0][:200]}): it wrote to the judge's channel") from None
        if not reply.ok:
            kind = policy.claimed_kind(reply.kind or "")
            raise Verdict(self.stage, kind, self._redact(reply.message or "failed without a message"), reply.line)
        return reply

    def _redact(self, text: str) -> str:
        own = ("/tmp/",) if self.jc.sandboxed else ((str(self.proc.scratch) + "/",) if self.proc else ())
        return redact.compiler_output(text, own)

    def _send_region(self, region: Region) -> None:
        fd = region.export_fd()
        try:
            self._request({"op": "region", "name": region.name, "size": region.size}, fds=(fd,))
        finally:
            os.close(fd)

    def _region(self, name: str, size: int) -> Region:
        """Shared memory the judge releases when the evaluation ends."""
        region = self.memory.allocate(name, size)
        self.regions.append(region)
        return region

    def _allocate(self, name: str, size: int) -> Region:
        """A region, sent to the candidate's process."""
        region = self._region(name, size)
        self._send_region(region)
        return region

    def _params(self, name: str) -> tuple[Region, list[Slot]]:
        """The reference's parameters copied into a region of their own."""
        layout = Layout(name)
        slots = [layout.add(list(p.shape), _dtype(p)) for p in self.ref.params]
        region = self._region(name, layout.size)
        for slot, p in zip(slots, self.ref.params):
            region.tensor(slot).copy_(p)
        return region, slots

    # -- load ------------------------------------------------------------------------------------
    def _load(self) -> None:
        self.enter(Stage.LOAD)
        run = self.jc.run
        self.device = self.backend.reference_device(run)
        try:
            self.result.versions = dict(self.backend.versions())
        except Exception:  # noqa: BLE001 - versions are a record, not a verdict
            pass
        self.result.device = _device_info(self.device, run, self.jc.device)
        try:
            self.overrides = dict(self.task.interpreter) if run.interpret else {}
            self.ref = Reference(self.task, self.device, self.overrides)
        except TaskFailure as e:
            raise Verdict(Stage.LOAD, ErrorKind.INFRA, str(e)) from None
        # Trial 0's inputs and reference now: its time scales the later stages' limits, and a problem too large for
        # the device is told so before any candidate code runs.
        self._interpretable(self.ref.input_elements())  # before a large problem's inputs are made on the CPU
        self.first = self._trial(self.rng.randrange(1 << 31))
        raw, refs, ref_s = self.first
        self._interpretable(sum(int(x.numel()) for x in raw if hasattr(x, "numel")))
        self._scale_limits(ref_s)
        layout = Layout("io")
        self.args, self.outs = self._layout(layout, raw, refs)
        self.io_bytes = (sum(Slot.model_validate(a["slot"]).nbytes for a in self.args if "slot" in a),
                         sum(o.nbytes for o in self.outs))
        self.memory = self.backend.memory(run)
        self._fits(layout.size)
        try:
            self.proc = self.jc.pool.take()
        except StartError as e:
            raise Verdict(Stage.LOAD, ErrorKind.INFRA, str(e)) from None
        params: list[Slot] = []
        if self.backend.needs_params and self.ref.params:
            region, params = self._params("params")
            self._send_region(region)
        self.io = self._allocate("io", layout.size)
        task = {"name": self.task.name, "source": self.task.source, "seed": self.task.seed,
                "init_inputs": self.ref.json_init_inputs(), "inputs": self._specs(self.args),
                "outputs": [{"shape": o.shape, "dtype": o.dtype} for o in self.outs], "overrides": self.overrides}
        try:
            self._request({"op": "setup", "task": task, "params": [{"slot": s.model_dump()} for s in params]})
        except Verdict as v:  # no candidate code has run yet: the backend cannot run this task here
            raise Verdict(Stage.LOAD, ErrorKind.INFRA, f"backend {self.backend.name} cannot run this task: "
                          f"{v.message}") from None
        self.candidate_ran = True  # from here the candidate's code runs, and may hold the device's memory
        self._request({"op": "load", "source": self.cand.source})

    def _interpretable(self, n: Optional[int]) -> None:
        """In an interpreter a large problem (n input elements) takes minutes a call: say so in one line, with the
        fix, before any candidate runs."""
        if not self.jc.run.interpret or n is None:
            return
        if n > INTERPRETER_MAX_ELEMENTS:
            raise Verdict(Stage.LOAD, ErrorKind.INFRA, f"the problem is too large for the interpreter ({n:,} input "
                          f"elements; it finishes about {INTERPRETER_MAX_ELEMENTS:,} in reasonable time): give the "
                          "task a smaller size for it, KSDK_TASK = {\"interpreter\": {\"SHAPE\": [256, 256]}} (the "
                          "module-level names its get_inputs() reads), or evaluate on a device")

    @staticmethod
    def _specs(args: list) -> list[dict]:
        out = []
        for a in args:
            if "slot" in a:
                out.append({"shape": a["slot"]["shape"], "dtype": a["slot"]["dtype"]})
            else:
                out.append({"value": a.get("value")})
        return out

    # -- compile ---------------------------------------------------------------------------------
    def _compile(self) -> None:
        self.enter(Stage.COMPILE)
        t = time.monotonic()
        reply = self._request({"op": "build"})
        self.compile_credit[0] = max(0.0, self.compile_credit[0] - (time.monotonic() - t))
        self.result.kernels = list(reply.kernels or [])[:64]

    # -- correctness -----------------------------------------------------------------------------
    def _trial(self, seed: int) -> tuple[list, list, float]:
        """Inputs for `seed` and their reference outputs (computed here, before the candidate sees them)."""
        import torch

        try:
            raw = self.ref.inputs(seed)
            t = time.perf_counter()
            refs = self.ref.forward(raw)
            if self.device.startswith("cuda"):
                torch.cuda.synchronize()
            return raw, refs, time.perf_counter() - t
        except TaskFailure as e:
            raise Verdict(self.stage, ErrorKind.INFRA, str(e)) from None
        except torch.cuda.OutOfMemoryError as e:
            if self.candidate_ran:
                raise Verdict(self.stage, ErrorKind.OOM, self._starved(e)) from None
            raise Verdict(self.stage, ErrorKind.INFRA, "the task's reference alone ran out of device memory "
                          f"({str(e).splitlines()[0][:200]}): the problem does not fit this device") from None

    def _layout(self, layout: Layout, raw: list, refs: list) -> tuple[list, list[Slot]]:
        """Slots for one input set and its outputs in `layout`; the input arguments as the runner sees them."""
        import torch

        args = []
        for k, x in enumerate(raw):
            if isinstance(x, torch.Tensor):
                args.append({"slot": layout.add(list(x.shape), _dtype(x)).model_dump()})
            elif isinstance(x, (bool, int, float)) or x is None:
                args.append({"value": x})
            elif hasattr(x, "shape") and hasattr(x, "dtype"):  # numpy arrays from a numpy task
                t = as_tensor(x, self.device)
                raw[k] = t
                args.append({"slot": layout.add(list(t.shape), _dtype(t)).model_dump()})
            else:
                raise Verdict(self.stage, ErrorKind.INFRA, f"get_inputs() item {k} is a {type(x).__name__}: only "
                              "tensors, arrays and numbers can be handed to a candidate (fix the task)")
        outs = [layout.add(list(r.shape), _dtype(r)) for r in refs]
        return args, outs

    def _write(self, region: Region, args: list, raw: list) -> None:
        for a, x in zip(args, raw):
            if "slot" in a:
                region.tensor(Slot.model_validate(a["slot"])).copy_(as_tensor(x, self.device))

    def _poison(self, region: Region, outs: list[Slot]) -> None:
        """Fill output slots with NaN bytes, so an output the candidate does not write fails the comparison."""
        import torch

        for s in outs:
            if s.nbytes:
                region.tensor(s).view(-1).view(torch.uint8).fill_(0xFF) if s.dtype != "bool" else \
                    region.tensor(s).fill_(True)

    def _check_report(self, report: Optional[Report], refs: list, what: str) -> None:
        """Policy on what the candidate's process says about one call (what incriminates it is believed): contract
        violations it saw, kernels launched, and its outputs' number, shapes and dtypes."""
        r = report or Report()
        if r.problems:
            raise Verdict(self.stage, ErrorKind.REWARD_HACK, f"{what}: {r.problems[0]}")
        if self._needs_kernels() and r.launches is not None and r.launches == 0:
            raise Verdict(self.stage, ErrorKind.REWARD_HACK, f"{what}: forward launched none of the backend's "
                          f"kernels: the output was computed by other code (PyTorch); {self.backend.language} "
                          "kernels must compute it")
        if r.kernels and not self.result.kernels:
            self.result.kernels = list(r.kernels)[:64]
        if r.seed_requests and self.jc.pool.seeder is not None:
            self.jc.pool.seeder.ask(r.seed_requests)
        if len(r.outputs) != len(refs):
            raise Verdict(self.stage, ErrorKind.SHAPE, f"{what}: the candidate returned {len(r.outputs)} outputs, "
                          f"the reference {len(refs)}")
        for i, ((shape, dtype), ref) in enumerate(zip(r.outputs, refs)):
            if list(shape) != list(ref.shape):
                raise Verdict(self.stage, ErrorKind.SHAPE, f"{what}: output {i} has shape {tuple(shape)} but the "
                              f"reference has {tuple(ref.shape)}")
            if dtype.replace("torch.", "") != _dtype(ref):
                raise Verdict(self.stage, ErrorKind.DTYPE, f"{what}: output {i} has dtype {dtype} but the "
                              f"reference has {_dtype(ref)}")

    def _needs_kernels(self) -> bool:
        return self.backend.requires_kernels and not self.task.allows_any_torch

    def _check_compute(self, report: Optional[Report], what: str) -> None:
        """PyTorch must not compute the answer: outputs no kernel wrote, compute ops the task does not allow."""
        r = report or Report()
        if self._needs_kernels() and r.written_by_kernels is False:
            raise Verdict(self.stage, ErrorKind.REWARD_HACK, f"{what}: an output was computed by PyTorch ops alone: "
                          "none of the kernels launched during forward received its memory; the output must be "
                          "written by your kernel")
        if r.torch_ops:
            ops = policy.compute_ops(r.torch_ops, self.task.allow_torch_ops)
            if ops:
                raise Verdict(self.stage, ErrorKind.REWARD_HACK, f"{what}: forward ran {', '.join(ops[:8])} in "
                              "PyTorch: the candidate's kernels must compute the result (a task may allow ops "
                              "through KSDK_TASK's allow_torch_ops)")

    def _compare(self, region: Region, outs: list[Slot], refs: list) -> tuple[list[OutputCheck], Any]:
        got = [region.tensor(s) for s in outs]
        return compare_outputs(got, refs, self.task.tolerance, chunk=COMPARE_CHUNK)

    def _fingerprint(self, region: Region, outs: list[Slot]) -> tuple:
        """A cheap summary of outputs (to notice the same values returned for other inputs)."""
        import torch

        fp = []
        for s in outs:
            t = region.tensor(s)
            b = t.reshape(-1).view(torch.uint8) if t.numel() else t.reshape(-1)
            fp.append((int(torch.sum(b, dtype=torch.int64)) if b.numel() else 0, tuple(s.shape)))
        return tuple(fp)

    def _scale_limits(self, ref_s: float) -> None:
        """Stage limits grow with the measured reference time (a 6 GiB softmax is not a 64x384 one): a candidate
        may be SLOWER_THAN_REFERENCE times slower per call, and each call costs the judge about one more."""
        s = self.task.timing
        calls = self.task.correctness_trials + 2
        self.limits.correctness = max(self.limits.correctness, calls * (SLOWER_THAN_REFERENCE + 2) * ref_s)
        timed = 2 * ROUNDS * (s.warmup + min(s.max_repetitions, max(s.repetitions, 3))) + 3 * 1024
        self.limits.performance = max(self.limits.performance, timed * (SLOWER_THAN_REFERENCE + 2) * ref_s)

    def _correctness(self) -> None:
        import torch

        self.enter(Stage.CORRECTNESS)
        task = self.task
        worst: list[OutputCheck] = []
        seen: list[tuple] = []
        for i in range(task.correctness_trials):
            raw, refs, _ = self.first if i == 0 else self._trial(self.rng.randrange(1 << 31))
            self.first = None
            self._write(self.io, self.args, raw)
            self._poison(self.io, self.outs)
            what = f"trial {i}"
            try:
                reply = self._request({"op": "call", "inputs": self.args, "outputs": _slot_args(self.outs),
                                       "record_ops": i < 2}, compile_credit=True)
            except Verdict as v:  # kernels compile at their first launch: a compile error there is the compile stage's
                if i == 0 and v.kind == ErrorKind.COMPILE:
                    v.stage = self.result.stage = Stage.COMPILE
                raise
            self._check_report(reply.report, refs, what)
            self._note_launches(reply.report)
            self._inputs_unchanged(raw, what)
            self._check_compute(reply.report, what)
            found, failure = self._compare(self.io, self.outs, refs)
            worst = _merge(worst, found)
            fp = self._fingerprint(self.io, self.outs)
            if failure and fp in seen:
                raise Verdict(self.stage, ErrorKind.REWARD_HACK, f"{what}: forward returned exactly the values it "
                              "returned for other inputs earlier: results are cached (by address, shape or count)")
            seen.append(fp)
            if failure:
                self.result.outputs, self.result.trials = worst, i + 1
                raise Verdict(self.stage, failure[0], f"{what}: {failure[1]}")
            del raw, refs
        # Cached-by-input check: the same input buffers, overwritten in place with new values, must give new results.
        raw, refs, _ = self._trial(self.rng.randrange(1 << 31))
        self._write(self.io, self.args, raw)
        self._poison(self.io, self.outs)
        reply = self._request({"op": "call", "inputs": self.args, "outputs": _slot_args(self.outs)})
        self._check_report(reply.report, refs, "inputs overwritten in place")
        self._check_compute(reply.report, "inputs overwritten in place")
        _found, failure = self._compare(self.io, self.outs, refs)
        if failure:
            raise Verdict(self.stage, ErrorKind.REWARD_HACK, "results are cached by input: after the input buffers "
                          "were overwritten in place with new values, forward returned values for the old inputs "
                          f"({failure[1]})")
        self.result.outputs, self.result.trials = worst, task.correctness_trials
        if self.device.startswith("cuda"):
            self.peaks["judge_peak_memory"] = int(torch.cuda.max_memory_allocated())
        if reply.report is not None and reply.report.peak_memory_bytes:
            self.peaks["candidate_peak_memory"] = int(reply.report.peak_memory_bytes)

    def _note_launches(self, report: Optional[Report]) -> None:
        if report is not None and report.launches is not None:
            self.min_launches = report.launches if self.min_launches is None else min(self.min_launches,
                                                                                      report.launches)

    def _inputs_unchanged(self, raw: list, what: str) -> None:
        for a, x in zip(self.args, raw):
            if "slot" not in a:
                continue
            shared = self.io.tensor(Slot.model_validate(a["slot"]))
            if not _same_bytes(shared, as_tensor(x, self.device)):
                raise Verdict(self.stage, ErrorKind.ALIASING, f"{what}: the candidate wrote into its input tensors; "
                              "inputs are read-only (the reference leaves them unchanged)")

    def _fits(self, shared_bytes: int) -> None:
        """A problem that cannot fit in free device memory is told so, with the figure, before it runs."""
        free = self.memory.free_bytes()
        if free is None:
            return
        ins, outs = self.io_bytes
        need = shared_bytes + outs + (256 << 20)  # shared inputs and outputs, the candidate's own outputs
        self.peaks["inputs_outputs"] = ins + outs
        if need > free:
            raise Verdict(self.stage, ErrorKind.INFRA, f"the problem needs about {need / 2**30:.1f} GiB more device "
                          f"memory (inputs {ins / 2**30:.2f} GiB, outputs {outs / 2**30:.2f} GiB, shared with the "
                          f"candidate plus its own outputs) but {free / 2**30:.1f} GiB is free: use a device with "
                          "more memory or shrink the task's get_inputs()")

    # -- performance -----------------------------------------------------------------------------
    def _performance(self) -> None:
        res = self.result
        if self.jc.run.interpret:
            res.performance_skipped = (f"{self.jc.fallback or 'an interpreter on the CPU'}, no device here: the "
                                       "kernels ran for correctness only; interpreter timings say nothing about "
                                       "device speed, so no speedup is reported")
            return
        if self.jc.skip_performance:
            res.performance_skipped = "performance stage skipped on request (skip_performance)"
            return
        import torch

        from ksdk.evaluation import timers

        self.enter(Stage.PERFORMANCE, self.limits.performance)
        if not self.device.startswith("cuda"):
            self.jc.pool.wait_spares()  # a spare's start-up must not share the CPU with a CPU timing
        s = self.task.timing
        raw, refs, _ = self._trial(self.rng.randrange(1 << 31))
        self._write(self.io, self.args, raw)
        dev = torch.device(self.device)
        timer = timers.timer_for(s, dev)
        base_fn, label, extra_label = self._baseline(raw, refs)
        cand_method = ""
        before = self._telemetry()
        base_samples: list[float] = []
        cand_samples: list[float] = []
        checks: dict[str, list[float]] = {}
        total = timers.rounds(s.placements)
        outs = _slot_args(self.outs)
        placed = ([timers.placed_inputs(raw, dev, k) for k in range(s.placements)]
                  if s.placements > 1 and dev.type == "cuda" else None)
        for r in range(total):
            warm = None if r == 0 else min(2, s.warmup)
            with torch.no_grad():
                if placed is not None:  # the baseline too runs over the input placements, round by round
                    k = r % s.placements
                    got = base_fn(timer, 1 / total, warm, placed[k])
                    checks.setdefault(f"{timers.placement_label(k)}#baseline", []).extend(got)
                    base_samples += got
                else:
                    base_samples += base_fn(timer, 1 / total, warm)
            self._poison(self.io, self.outs)
            reply = self._request({"op": "time", "inputs": self.args, "outputs": outs,
                                   "settings": s.model_dump(mode="json"), "share": 1 / total, "warmup": warm,
                                   "round": r})
            samples = list(reply.samples or [])
            if not samples or not all(math.isfinite(x) and x > 0 for x in samples) or len(samples) > 100_000:
                raise Verdict(self.stage, ErrorKind.REWARD_HACK, "the candidate's process reported timing samples "
                              "that are not a set of positive finite numbers")
            cand_samples += samples
            cand_method = (reply.report.method if reply.report else "") or cand_method
            for k, v in (reply.report.cross_checks if reply.report else {}).items():
                checks.setdefault(f"{k}#candidate", []).extend(float(x) for x in v if math.isfinite(x) and x > 0)
            for w in (reply.report.warnings if reply.report else [])[:4]:
                if w not in res.warnings:
                    res.warnings.append(w)
            self._check_report(reply.report, refs, f"timing round {r}")
            self._check_compute(reply.report, f"timing round {r}")
            launches = reply.report.launches if reply.report else None
            if self.min_launches and launches is not None and launches < self.min_launches:
                raise Verdict(self.stage, ErrorKind.REWARD_HACK, f"forward launched {launches} kernels per call while "
                              f"timed but at least {self.min_launches} per call during correctness: it does less "
                              "work when called repeatedly")
            _found, failure = self._compare(self.io, self.outs, refs)
            if failure:
                raise Verdict(self.stage, ErrorKind.REWARD_HACK, f"the output of the last timed call is wrong "
                              f"({failure[1]}): the candidate does less (or different) work when called repeatedly")
        after = self._telemetry()
        if before:
            res.device.extra["clocks_during_timing"] = {"before": before, "after": after}
        method = getattr(base_fn, "method", "") or timer.method
        cand = summarize(cand_samples, f"{cand_method or 'not said'} (in the candidate's process)")
        base = summarize(base_samples, method)
        by = s.l2_flush_by or "read"
        for key, v in checks.items():
            name, side = key.rsplit("#", 1)
            if v:
                how = (f"triton.testing.do_bench (median of all; L2 evicted by {by})" if name == "do_bench"
                       else method if name.startswith("placement") else name)
                res.cross_checks[f"{name}:{side}"] = summarize(v, how)
        placements = [c.median_ms for k, c in res.cross_checks.items()
                      if k.startswith("placement") and k.endswith(":candidate")]
        if len(placements) > 1 and max(placements) > min(placements) * (1 + PLACEMENT_WARN):
            lo, hi = min(placements), max(placements)
            res.warnings.append(f"the candidate's time depends on where its inputs sit in device memory: medians "
                                f"{lo * 1e3:.1f}-{hi * 1e3:.1f} us over {len(placements)} placements "
                                f"({100 * (hi / lo - 1):.1f}% apart; the speedup is taken over all of them)")
        if s.cross_check_do_bench and dev.type == "cuda":
            self._do_bench_baseline(raw, s)
        self._bound(cand, refs, raw)
        if extra_label:
            res.extra_baselines.update(extra_label)
        if s.compile_baseline and dev.type == "cuda":
            self._compile_baseline(timer, raw)
        res.baseline_timing, res.candidate_timing, res.baseline = base, cand, label
        res.speedup = speedup(base, cand)
        res.stage = Stage.PERFORMANCE

    def _baseline(self, raw: list, refs: list):
        """(measure function, label, extra baselines): the task's own baseline kernel when it ships one for this
        backend (timed here by the backend's Runner: trusted code), else the reference Model."""
        import torch

        cpu = not self.device.startswith("cuda")
        eager_label = "PyTorch eager (the task's Model)" + (" on the CPU, 1 thread" if cpu else "")

        def model(timer, share, warm, inputs=None):
            threads = torch.get_num_threads()
            args = raw if inputs is None else inputs
            if cpu:
                torch.set_num_threads(1)
            try:
                return timer.measure(lambda: self.ref.call(*args), share=share, warmup=warm).samples_ms
            finally:
                torch.set_num_threads(threads)

        shipped = self.backend.baseline_source(self.task.source)
        if not shipped:
            return model, eager_label, None
        label, source = shipped
        try:
            runner = self.backend.runner(self.jc.run)
            layout = Layout("baseline")
            args, outs = self._layout(layout, list(raw), refs)
            region = self._region("baseline", layout.size)
            self._write(region, args, raw)
            params = []
            if self.backend.needs_params:
                preg, pslots = self._params("bparams")
                params = [preg.view(sl) for sl in pslots]
            runner.setup(TaskView(self.task.name, self.task.source, self.task.seed, self.ref.json_init_inputs(),
                                  params, self._specs(args), [{"shape": o.shape, "dtype": o.dtype} for o in outs]))
            runner.load(source)
            runner.build()
            ins = [region.view(Slot.model_validate(a["slot"])) if "slot" in a else a.get("value") for a in args]
            out_views = [region.view(o) for o in outs]
            runner.call(ins, out_views)
            _f, failure = self._compare(region, outs, refs)
            if failure:
                raise RuntimeError(f"it computes wrong values ({failure[1]})")
        except Exception as e:  # noqa: BLE001 - the task's baseline is a convenience: fall back, say why
            self.result.warnings.append(f"the task's baseline ({label}) is unusable ({str(e)[:300]}); timing the "
                                        "task's Model instead")
            return model, eager_label, None

        def shipped_fn(timer, share, warm, inputs=None):
            samples, report = runner.time(ins, out_views, self.task.timing, share, warm)
            shipped_fn.method = report.method
            return samples

        eager = {}
        try:
            from ksdk.evaluation import timers

            t = timers.timer_for(self.task.timing, torch.device(self.device))
            with torch.no_grad():
                eager[eager_label] = summarize(model(t, 0.5, None), t.method)
        except Exception:  # noqa: BLE001 - an extra baseline is a record
            pass
        return shipped_fn, label, eager

    def _do_bench_baseline(self, raw: list, s) -> None:
        """The baseline timed again by triton.testing.do_bench in this process, same buffers and eviction (a record
        beside the candidate's own do_bench figures)."""
        try:
            import torch
            import triton.testing

            from ksdk.evaluation.timers import DEFAULT_FLUSH, do_bench_eviction

            by = s.l2_flush_by or DEFAULT_FLUSH
            with torch.no_grad(), do_bench_eviction(by):
                samples = triton.testing.do_bench(lambda: self.ref.call(*raw), warmup=25, rep=100, return_mode="all")
            self.result.cross_checks["do_bench:baseline"] = summarize(
                samples, f"triton.testing.do_bench (median of all; L2 evicted by {by})")
        except Exception as e:  # noqa: BLE001 - a record, not a verdict
            self.result.warnings.append(f"do_bench cross-check failed: {type(e).__name__}: {str(e)[:200]}")

    def _compile_baseline(self, timer, raw: list) -> None:
        from ksdk.evaluation import timers

        compiled = timers.optional_compile(self.ref.model)
        try:
            if compiled is None:
                raise RuntimeError("torch.compile unavailable")
            self.result.extra_baselines["torch.compile"] = summarize(
                timer.measure(lambda: compiled(*raw)).samples_ms, timer.method)
        except Exception as e:  # noqa: BLE001
            self.result.warnings.append(f"torch.compile baseline failed: {type(e).__name__}: {str(e)[:200]}")

    def _telemetry(self) -> dict:
        try:
            return dict(self.backend.telemetry(self.jc.run))
        except Exception:  # noqa: BLE001 - a record, not a verdict
            return {}

    # -- the judge's own clock -------------------------------------------------------------------
    def _bound(self, cand: TimingStats, refs: list, raw: list) -> None:
        """Time back-to-back calls on fresh inputs with the judge's clock, spot-check their outputs, and hold the
        reported median against that figure. Noise (another process, a descheduled thread) only makes the judge's
        figure larger, so a batch that finds the report too low is run again, up to twice, and the least counts."""
        judge_ms, n, mode = self._batch(cand, refs, raw)
        for _ in range(2 if self.backend.host_code else 0):
            if cand.median_ms >= policy.bound_floor_ms(judge_ms, mode, n):
                break
            again, n, mode = self._batch(cand, refs, raw)
            judge_ms = min(judge_ms, again)
        self.result.cross_checks["judge clock:candidate"] = TimingStats(
            median_ms=judge_ms, iqr_ms=0.0, mean_ms=judge_ms, std_ms=0.0, min_ms=judge_ms, max_ms=judge_ms, n=n,
            method=f"the judge's wall clock over {n} back-to-back calls on fresh inputs ({mode}), output copies "
                   f"removed; {self.batch_checked} calls' outputs checked, the last one and others drawn after "
                   "the batch")
        if not self.backend.host_code:
            # Device code alone: nothing of the candidate's ran on the host to patch the timing, and the batch's
            # figure includes the copies between host and device; it is a record (its outputs were checked).
            self.result.cross_checks["judge clock:candidate"].method += "; includes host<->device copies"
            return
        if cand.median_ms < policy.bound_floor_ms(judge_ms, mode, n):
            raise Verdict(self.stage, ErrorKind.REWARD_HACK, f"the candidate's process reported a median of "
                          f"{cand.median_ms:.4f} ms per call, but the judge's own clock measured {judge_ms:.4f} ms per "
                          f"call over {n} back-to-back calls: the reported timing is not what ran (patched timers, "
                          "events or streams)")
        if cand.median_ms > (1 + policy.OVER_REL) * judge_ms + policy.OVER_ABS_MS:
            self.result.warnings.append(
                f"the backend reported a median of {cand.median_ms:.4f} ms per call, far above the {judge_ms:.4f} ms "
                "the judge's clock measured: the backend's timer is off")

    def _batch(self, cand: TimingStats, refs: list, raw: list) -> tuple[float, int, str]:
        """One judge-clocked batch: (ms per call, calls, how they ran)."""
        per_set = sum(self.io_bytes)
        cap = policy.BATCH_MAX_CALLS["graph" if self.memory.kind == "cuda" else "host"]
        n = max(2, min(cap, math.ceil(policy.BATCH_TARGET_MS / max(cand.median_ms, 1e-3))))
        budget = RING_BUDGET_BYTES.get(self.memory.kind, RING_BUDGET_BYTES["host"])
        free = self.memory.free_bytes()
        if free is not None:
            budget = min(budget, max(0, free // 4))
        n = max(1, min(n, budget // max(per_set, 1)))
        layout = Layout("ring")
        sets = [self._layout(layout, list(raw), refs) for _ in range(n)]
        seeds = [self.rng.randrange(1 << 31) for _ in range(n)]
        ring = self._allocate("ring", layout.size)
        try:
            reply = self._request({"op": "prepare_batch", "inputs": [a for a, _ in sets],
                                   "outputs": [_slot_args(outs) for _, outs in sets]})
            mode = policy.bound_mode(reply.mode, self.memory.kind)
            for seed, (args, outs) in zip(seeds, sets):  # the inputs exist only now: nothing could be precomputed
                self._write(ring, args, self.ref.inputs(seed))
                self._poison(ring, outs)
            self._sync()
            cpu0 = self.proc.cpu_ns()
            t = time.perf_counter()
            self._request({"op": "batch"})
            wall_ms = (time.perf_counter() - t) * 1e3
            # Work left running after the reply is not done: the candidate's processes are stopped now, and the
            # clock runs on until every output is written (device work queued before the reply may still land).
            self.proc.freeze()
            wall_ms = self._settled(ring, sets, n, t, wall_ms)
            if self.memory.kind != "cuda":
                # Work on the host: its CPU time is the kernel's own accounting, which waiting for a core on a busy
                # machine does not inflate (and threads add to): the judge takes the smaller of the two.
                cpu_ms = (self.proc.cpu_ns() - cpu0) / 1e6
                wall_ms = min(wall_ms, cpu_ms) if cpu_ms > 0 else wall_ms
            order = [n - 1] + self.rng.sample(range(n - 1), n - 1)
            t_checks = time.perf_counter()
            checked = 0
            for j in order:
                if checked >= policy.BATCH_CHECKS and \
                        (time.perf_counter() - t_checks) * 1e3 > policy.BATCH_CHECK_BUDGET_MS:
                    break
                _raw_j, refs_j, _ = self._trial(seeds[j])
                _f, failure = self._compare(ring, sets[j][1], refs_j)
                if failure:
                    raise Verdict(self.stage, ErrorKind.REWARD_HACK, f"call {j + 1} of {n} back-to-back calls timed "
                                  f"by the judge returned a wrong output ({failure[1]}): the candidate skips or "
                                  "changes work when called repeatedly")
                checked += 1
            # Device memory: each call's outputs are copied into its slot, at a cost the judge measures itself. Host
            # memory: Runners write into the slots (or copy at host speed, which then stays in the figure).
            copy_ms = self._copy_ms(sets[0][1], ring) if self.memory.kind == "cuda" else 0.0
            self.batch_checked = checked
        finally:
            self.proc.thaw()  # a no-op unless freeze() ran
            self.regions.remove(ring)
            ring.close()
        return max(wall_ms / n - copy_ms, 1e-6), n, mode

    def _settled(self, ring: Region, sets: list, n: int, t0: float, wall_ms: float) -> float:
        """The batch's time once every call's outputs are written: the reply's time if they were by then, else
        the time they took to appear (at most BATCH_SETTLE_MS more); outputs that never appear are a Verdict."""
        first = True
        while True:
            j = self._unwritten(ring, sets)
            now_ms = (time.perf_counter() - t0) * 1e3
            if j is None:
                return wall_ms if first else now_ms
            if now_ms > wall_ms + policy.BATCH_SETTLE_MS:
                raise Verdict(self.stage, ErrorKind.REWARD_HACK, f"call {j + 1} of {n} back-to-back calls timed by "
                              "the judge left outputs unwritten (still the judge's poison after the calls returned, "
                              "and soon after): the candidate skips work when called repeatedly, or leaves it "
                              "running after a call returns, where no clock sees it")
            first = False
            time.sleep(0.001)

    def _unwritten(self, ring: Region, sets: list) -> Optional[int]:
        """The first call of the batch with a floating-point output still holding the judge's poison (all bits set,
        a NaN no arithmetic produces), or None."""
        import torch

        ints = {"float32": torch.int32, "float16": torch.int16, "bfloat16": torch.int16, "float64": torch.int64}
        flags = []
        for _args, outs in sets:
            found = [torch.zeros((), dtype=torch.bool, device=self.device)]
            for s in outs:
                if s.dtype in ints and s.nbytes:
                    flat = ring.tensor(s).reshape(-1).view(ints[s.dtype])
                    found += [flat[i:i + COMPARE_CHUNK].eq(-1).any() for i in range(0, flat.numel(), COMPARE_CHUNK)]
            flags.append(torch.stack(found).any())
        hit = torch.nonzero(torch.stack(flags)).flatten()
        return int(hit[0]) if hit.numel() else None

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()

    def _copy_ms(self, outs: list[Slot], region: Region) -> float:
        """The judge's own time to copy one call's outputs between buffers of this memory (the batch copies each
        call's outputs into its slot; that is not the candidate's time)."""
        import torch

        srcs = [region.tensor(o) for o in outs if o.nbytes]
        if not srcs:
            return 0.0
        dsts = [torch.empty_like(x) for x in srcs]
        times = []
        for _ in range(5):
            self._sync()
            t = time.perf_counter()
            for d, x in zip(dsts, srcs):
                d.copy_(x)
            self._sync()
            times.append((time.perf_counter() - t) * 1e3)
        return sorted(times)[len(times) // 2]


def _out_of_memory(e: BaseException) -> bool:
    """A device allocation failed: PyTorch's OutOfMemoryError, or a driver call's out-of-memory result."""
    return type(e).__name__ == "OutOfMemoryError" or "out of memory" in str(e).lower()


def _same_bytes(a, b, chunk: int = 1 << 28) -> bool:
    """Bitwise equality of two tensors of one shape and dtype, compared in chunks (no full-size temporaries)."""
    import torch

    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    x, y = a.reshape(-1), b.reshape(-1)
    if x.numel() == 0:
        return True
    x, y = x.view(torch.uint8), y.view(torch.uint8)
    for i in range(0, x.numel(), chunk):
        if not torch.equal(x[i:i + chunk], y[i:i + chunk]):
            return False
    return True


def _slot_args(slots: list[Slot]) -> list[dict]:
    """Slots as the arguments of a request to the candidate's process."""
    return [{"slot": s.model_dump()} for s in slots]


def _dtype(t) -> str:
    return str(t.dtype).replace("torch.", "")


def _device_info(device: str, run: RunContext, probed: Optional[DeviceInfo]) -> DeviceInfo:
    if probed is not None and not run.interpret and not device.startswith("cuda"):
        return probed.model_copy(update={"index": run.device})
    if run.interpret:
        import platform

        return DeviceInfo(index=run.device, name=f"interpreter on {platform.processor() or 'CPU'}", kind="interpreter")
    if device.startswith("cuda"):
        import torch

        props = torch.cuda.get_device_properties(0)
        return DeviceInfo(index=run.device, name=props.name, kind="gpu", runtime=f"cuda {torch.version.cuda}",
                          extra={"sm": f"{props.major}.{props.minor}",
                                 "memory_gb": round(props.total_memory / 2**30, 1),
                                 "multiprocessors": props.multi_processor_count})
    return DeviceInfo.host_cpu(run.device)


def _merge(worst: list[OutputCheck], found: list[OutputCheck]) -> list[OutputCheck]:
    """Keep the largest errors seen per output across trials."""
    if not worst:
        return [o.model_copy() for o in found]
    for w, f in zip(worst, found):
        w.max_abs_error = max(w.max_abs_error, f.max_abs_error)
        w.max_rel_error = max(w.max_rel_error, f.max_rel_error)
        w.ok = w.ok and f.ok
    return worst
