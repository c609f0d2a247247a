"""The messages of both hops, in one wire form (ksdk/evaluation/frames.py: length-prefixed JSON over a Unix socket):
the evaluator's driver <-> the judge process (ksdk/evaluation/worker.py), and the judge <-> a candidate's process
(ksdk/evaluation/candidate.py). Requests are what the trusted side sends; replies from a candidate's process are
hostile input, validated field by field (anything else is a malformed reply)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field

from ksdk.models import KernelMeta, Model

# Environment of the processes (read once at their start, then removed from their environment)
WORKER_FD_ENV = "KSDK_WORKER_FD"  # the judge's socket to its driver
PARENT_ENV = "KSDK_WORKER_PARENT"  # the driver's pid (the judge exits if it is gone)
JUDGE_ENV = "KSDK_JUDGE"  # {"spares": N, "sandbox": true|false}
RUNNER_FD_ENV = "KSDK_RUNNER_FD"  # a candidate's socket to its judge


# -- judge <-> candidate ---------------------------------------------------------------------------------------
class Report(Model):
    """A candidate process's report of one call, as the judge accepts it (claims: only what incriminates counts)."""

    outputs: list[tuple[list[int], str]] = []
    launches: Optional[int] = None
    torch_ops: Optional[list[str]] = None
    kernels_seen: Optional[dict[str, list[str]]] = None
    kernel_record: Optional[str] = None
    kernel_record_lost: bool = False
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
    placed: Optional[list[list[int]]] = None  # per call, per output: byte offset in the batch's arena
    device_ms: Optional[float] = None  # a batch by the process's own device events, when asked (a record)
    notes: Optional[dict[str, float]] = None  # what else the process saw in that batch (Runner.batch_notes; a record)
    at: Optional[list[float]] = None  # the process's own clock: request read, work done (a record, see clock.py)


class Request(Model):
    """A request the judge sends; `op` names the primitive."""

    op: str


class Region(Request):
    op: Literal["region"] = "region"
    name: str
    size: int


class Release(Request):
    """Drop a region (the judge frees it once both sides have)."""

    op: Literal["release"] = "release"
    name: str


class Setup(Request):
    op: Literal["setup"] = "setup"
    task: dict
    params: list[dict] = []


class Load(Request):
    op: Literal["load"] = "load"
    source: str


class Build(Request):
    op: Literal["build"] = "build"


class Call(Request):
    """One call on inputs the judge wrote; `rng_seed` seeds the random generators right before it (the reference's
    forward drew from the same state)."""

    op: Literal["call"] = "call"
    inputs: list[dict]
    outputs: list[dict]
    record_ops: bool = True
    rng_seed: Optional[int] = None


class Time(Request):
    """The Runner's own timing (a cross-check, or the measurement of backends that run no candidate host code)."""

    op: Literal["time"] = "time"
    inputs: list[dict]
    outputs: list[dict]
    settings: dict
    share: float = 1.0
    warmup: Optional[int] = None
    round: int = 0


class PrepareBatch(Request):
    """Get ready to call once per input set; `arena` is judge-visible memory the Runner may place outputs in."""

    op: Literal["prepare_batch"] = "prepare_batch"
    inputs: list[list[dict]]
    outputs: list[list[dict]]
    arena: Optional[dict] = None
    mode: str = "graph"  # what the judge would like: 'graph' (replayed device graphs), 'eager' or 'host'


class Batch(Request):
    op: Literal["batch"] = "batch"
    events: bool = False  # also time the batch by the process's own device events (a record, never a figure)
    passes: int = Field(1, ge=1, le=4096)  # the prepared calls this many times over, one synchronisation at the end


class Ping(Request):
    """Wait for the device and reply: the judge's clock learns the round trip before any candidate code exists."""

    op: Literal["ping"] = "ping"


# -- driver <-> judge ------------------------------------------------------------------------------------------
class Evaluate(Request):
    op: Literal["eval"] = "eval"
    nonce: str
    task: dict
    candidate: dict
    skip_performance: bool = False


class Note(Model):
    """What a judge process tells its driver: ready, accepted, a stage's start (its limit), a result, an error."""

    op: Literal["ready", "accepted", "stage", "waiting", "resumed", "result", "error"]  # waiting: for the device's
    # lock, held by another judge (the stage's deadline stops until resumed)
    nonce: Optional[str] = None
    stage: Optional[str] = None
    limit: Optional[float] = None
    result: Optional[dict] = None
    recycle: bool = False
    versions: dict[str, str] = {}
    warnings: list[str] = []
    message: Optional[str] = None
    traceback: Optional[str] = None
    pid: Optional[int] = None
