"""The judge's line to one candidate's process: it owns the current stage, its deadline (set once when the stage
starts; stages only move forward) and the compile credit, keeps the process frozen whenever it is not serving a
request, and turns every way the process can misbehave (timeouts, deaths, bad frames, malformed replies) into a
Verdict. It also keeps the evaluation's time per stage (EvalResult.stages)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Union

from ksdk.evaluation import frames, policy, redact
from ksdk.evaluation.protocol import Reply, Request
from ksdk.evaluation.sandboxed import Died, Overrun
from ksdk.evaluation.verdict import Verdict
from ksdk.models import ErrorKind, Stage


@contextlib.contextmanager
def span(spans: dict[str, float], running: list[str], name: str) -> Iterator[None]:
    """Add the block's wall time to `spans` under `name`, with `name` on `running` (innermost last) meanwhile."""
    t = time.perf_counter()
    running.append(name)
    try:
        yield
    finally:
        running.pop()
        spans[name] = spans.get(name, 0.0) + time.perf_counter() - t


@dataclass
class Span:
    """When a request ran by the judge's clock (perf_counter seconds): `start` just before the process was thawed,
    `reply` when its reply arrived, `frozen` once it was frozen again; `cpu_after_ns`: CPU time its processes used
    between the reply and the freeze (work a candidate left running after replying)."""

    start: float
    reply: float
    frozen: float
    cpu_after_ns: int


class Link:
    """Requests to one candidate process under the current stage's deadline; `proc` is a CandidateProcess."""

    def __init__(self, proc, on_stage: Callable[[Stage, float], None], compile_limit: float, sandboxed: bool,
                 spans: Optional[dict[str, float]] = None, running: Optional[list[str]] = None):
        self.proc, self.on_stage, self.sandboxed = proc, on_stage, sandboxed
        self.stage, self.limit = Stage.LOAD, 0.0
        self.deadline = time.monotonic()
        self.compile_credit = [float(compile_limit)]
        self.spans: dict[str, float] = {} if spans is None else spans
        self.running: list[str] = [] if running is None else running  # spans now running, innermost last (records)

    def enter(self, stage: Stage, limit: float) -> None:
        """Start a stage with its limit (seconds): its deadline is set once, here."""
        self.stage, self.limit = stage, float(limit)
        self.deadline = time.monotonic() + self.limit
        self.on_stage(stage, self.limit)

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        """Add the block's wall time to the evaluation's breakdown under `name`."""
        with span(self.spans, self.running, name):
            yield

    def request(self, req: Union[Request, dict], compile_credit: bool = False, fds: tuple[int, ...] = ()) -> Reply:
        """One request with this stage's deadline, the process thawed only while it serves it."""
        return self.timed(req, compile_credit, fds)[0]

    def timed(self, req: Union[Request, dict], compile_credit: bool = False,
              fds: tuple[int, ...] = (), spin: bool = False) -> tuple[Reply, Span]:
        """A request, and when it ran by the judge's clock: from just before the process was thawed to serve it until
        its reply arrived, and until it was frozen again (with the CPU time its processes used in between). With
        `spin` (the clock's requests), the reply is polled for rather than slept on, so that it is seen on arrival."""
        msg = req.model_dump(mode="json") if isinstance(req, Request) else req
        t0 = time.perf_counter()
        self.proc.thaw()
        try:
            raw = self.proc.request(msg, self.deadline, self.compile_credit if compile_credit else None, fds, spin)
            t1 = time.perf_counter()
            cpu1 = self.proc.cpu_ns()
        except TimeoutError:
            self.proc.kill()
            raise Verdict(self.stage, ErrorKind.TIMEOUT,
                          f"stage '{self.stage.value}' exceeded its {self.limit:g} s limit; the candidate's "
                          "process and everything it started were killed") from None
        except Died as d:
            text = f"the candidate's process died during stage '{self.stage.value}' ({d.how})"
            if d.log:
                text += "\nlast output:\n" + self.redact(d.log)
            raise Verdict(self.stage, ErrorKind.CRASH, text) from None
        except Overrun as o:
            raise Verdict(self.stage, ErrorKind.CRASH, f"the candidate's process was ended: {o}") from None
        except frames.FrameError as e:
            self.proc.kill()
            raise Verdict(self.stage, ErrorKind.CRASH, f"the candidate's process sent a malformed message ({e}): "
                          "it wrote to the judge's channel") from None
        try:
            self.proc.freeze()
        except Overrun as o:  # its processes would not stop: ended, and said so
            raise Verdict(self.stage, ErrorKind.CRASH, f"the candidate's process was ended: {o}") from None
        span = Span(t0, t1, time.perf_counter(), self.proc.cpu_ns() - cpu1)
        try:
            reply = Reply.model_validate(raw)
        except Exception as e:  # noqa: BLE001 - pydantic's ValidationError names the field
            self.proc.kill()
            raise Verdict(self.stage, ErrorKind.CRASH, "the candidate's process sent a malformed reply "
                          f"({str(e).splitlines()[0][:200]}): it wrote to the judge's channel") from None
        if not reply.ok:
            kind = policy.claimed_kind(reply.kind or "")
            raise Verdict(self.stage, kind, self.redact(reply.message or "failed without a message"), reply.line)
        return reply, span

    def redact(self, text: str) -> str:
        """Text from the candidate's process with foreign paths and file contents cut (ksdk/evaluation/redact.py)."""
        own = ("/tmp/",) if self.sandboxed else (str(self.proc.scratch) + "/",)
        return redact.compiler_output(text, own)

    def send_region(self, region, name: Optional[str] = None) -> None:
        """Hand a shared region to the process."""
        import os

        from ksdk.evaluation.protocol import Region

        fd = region.export_fd()
        try:
            self.request(Region(name=name or region.name, size=region.size), fds=(fd,))
        finally:
            os.close(fd)
