"""Data that crosses a process, network or disk boundary: pydantic models, serialised as JSON everywhere."""

from __future__ import annotations

import hashlib
import time
import uuid
from enum import Enum
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ksdk.languages import Language, LanguageField


class Model(BaseModel):
    """Base of every ksdk model: strict about unknown fields so typos in configs fail loudly."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    def to_json(self) -> str:
        """Serialise to one JSON string (the one format used on disk, on the wire and between processes)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes):
        """Parse what `to_json` wrote; raises pydantic.ValidationError naming the bad field."""
        return cls.model_validate_json(text)


class Stage(str, Enum):
    """Evaluation stages, in order. A result records the last stage it reached."""

    LOAD = "load"
    COMPILE = "compile"
    CORRECTNESS = "correctness"
    PERFORMANCE = "performance"

    @property
    def order(self) -> int:
        return list(Stage).index(self)


class Status(str, Enum):
    """Overall verdict: the candidate passed every stage it ran, failed one, or the harness itself failed."""

    OK = "ok"
    FAILED = "failed"
    INFRA_ERROR = "infra_error"


class ErrorKind(str, Enum):
    """Why a candidate failed; one kind per distinct fix the author (or the LLM) would make."""

    SYNTAX = "syntax_error"
    IMPORT = "import_error"
    MISSING_ENTRY = "missing_entry"
    COMPILE = "compile_error"
    RUNTIME = "runtime_error"
    SHAPE = "shape_mismatch"
    DTYPE = "dtype_mismatch"
    VALUE = "wrong_value"
    NAN_INF = "nan_or_inf"
    ALIASING = "output_aliasing"
    REWARD_HACK = "reward_hack"
    TIMEOUT = "timeout"
    CRASH = "crash"
    DEVICE_FAULT = "device_fault"
    OOM = "out_of_memory"
    INFRA = "infra"


class Tolerance(Model):
    """Absolute and relative tolerance for one dtype: |out - ref| <= atol + rtol * |ref|."""

    atol: float
    rtol: float


def _default_tolerances() -> dict[str, Tolerance]:
    # KernelBench's current defaults.
    return {
        "float32": Tolerance(atol=1e-4, rtol=1e-4),
        "float64": Tolerance(atol=1e-6, rtol=1e-6),
        "float16": Tolerance(atol=1e-2, rtol=1e-2),
        "bfloat16": Tolerance(atol=1e-2, rtol=1e-2),
    }


class TimingSettings(Model):
    """How the performance stage measures: warm-up, repetitions, time budget, L2 flush."""

    warmup: int = Field(10, ge=0)
    warmup_ms: float = Field(25.0, ge=0, description="and warm up for at least this long (do_bench's 25 ms), so "
                             "the GPU reaches its sustained clocks before the first timed call")
    repetitions: int = Field(100, ge=3)
    min_time_ms: float = Field(50.0, ge=0, description="repeat until at least this much kernel time is sampled")
    max_repetitions: int = Field(2000, ge=3)
    flush_l2: bool = True
    l2_flush_by: Optional[Literal["read", "write"]] = Field(
        None, description="how L2 is evicted before each repetition: 'read' (a large buffer is read: the lines left "
        "are clean, nothing of the flush is charged to the timed call), 'write' (zeroed, as triton.testing.do_bench "
        "and nvbench do: its dirty lines are written back inside the timed call); None: the backend's default")
    compile_baseline: bool = Field(False, description="also time torch.compile as a second baseline")
    cross_check_do_bench: bool = Field(False, description="also time baseline and candidate with "
                                       "triton.testing.do_bench in the same process, on the same buffers and with the "
                                       "same L2 eviction (EvalResult.cross_checks): a check on the timer itself")
    placements: int = Field(1, ge=1, le=16, description="kept for old task files: the judge's clock now always "
                            "times over a ring of input sets at different places in memory (both sides alike)")
    graphs: bool = Field(True, description="replay short calls (under 2 ms) as device graphs on both sides, so "
                         "neither pays Python's launch overhead; False times eager calls, launch overhead included, "
                         "as a model's own forward pays it")
    cross_check_reported: bool = Field(False, description="also ask the candidate's process to time itself (its "
                                       "Runner's method), kept in EvalResult.cross_checks as a record; never the "
                                       "speedup")
    race_below: Optional[float] = Field(None, gt=0, description="a search's best speedup so far: the judge's rounds "
                                        "stop once the speedup's 95% interval lies wholly below it (at least 5 rounds: "
                                        "a candidate that cannot be the best gets a rougher figure, sooner); None: "
                                        "every candidate is timed to the usual precision. Not part of the cache key")


class StageTimeouts(Model):
    """Per-stage wall-clock limits in seconds; the worker is killed (with its process group) past them."""

    load: float = 60.0
    compile: float = 180.0
    correctness: float = 120.0
    performance: float = 180.0

    def for_stage(self, stage: Stage) -> float:
        return float(getattr(self, stage.value))


class Task(Model):
    """What to optimise: a KernelBench-format reference (Model, get_inputs, get_init_inputs) plus policy."""

    name: str
    source: str = Field(description="the reference file's text")
    path: Optional[str] = None
    tolerances: dict[str, Tolerance] = Field(default_factory=_default_tolerances)
    correctness_trials: int = Field(5, ge=1)
    seed: int = 42
    timing: TimingSettings = Field(default_factory=TimingSettings)
    timeouts: StageTimeouts = Field(default_factory=StageTimeouts)
    interpreter: dict[str, Any] = Field(default_factory=dict, description="module-level names of the task file to "
                                        "replace when kernels run in an interpreter (no device), e.g. {'SHAPE': "
                                        "[256, 256]}: a problem size the interpreter finishes in seconds")
    allow_torch_ops: list[str] = Field(default_factory=list, description="PyTorch compute ops (aten names such as "
                                       "'aten::mm') a candidate's forward may run; '*' allows any (the reference "
                                       "itself as candidate, `ksdk bench --self-check`). Allocation, views and copies "
                                       "are always allowed")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def allows_any_torch(self) -> bool:
        """True when the task lets the candidate compute with PyTorch alone (self-check)."""
        return "*" in self.allow_torch_ops

    def tolerance(self, dtype: str) -> Tolerance:
        """Tolerance for a dtype name such as 'float32' or 'torch.float16'; float32's for unknown dtypes."""
        key = dtype.replace("torch.", "")
        return self.tolerances.get(key) or self.tolerances.get("float32") or Tolerance(atol=1e-4, rtol=1e-4)

    @property
    def digest(self) -> str:
        """Content hash of the task (source and policy), part of the evaluation cache key."""
        return hashlib.sha256(self.model_dump_json(exclude={"path": True, "metadata": True,
                                                            "timing": {"race_below"}}).encode()).hexdigest()[:16]


class Mutation(Model):
    """How a candidate was made: which mutator, which model, what it was asked and what it replied."""

    mutator: str
    model: Optional[str] = None
    prompt: Optional[str] = None
    reply: Optional[str] = None
    reply_format: Optional[str] = Field(None, description="'full', 'edits' or 'params'")
    params: dict[str, Any] = Field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    notes: list[str] = Field(default_factory=list)


def normalize_source(source: str, language: Optional[Language] = None) -> str:
    """Canonical form used for duplicate detection: no trailing spaces, no blank lines, and no comment-only lines
    in the language's comment syntax (none without a language)."""
    return (language or Language()).normalize(source)


def source_hash(source: str, language: Optional[Language] = None) -> str:
    """Hash of the normalized source: two candidates with the same hash are the same program."""
    return hashlib.sha256(normalize_source(source, language).encode()).hexdigest()[:16]


class Candidate(Model):
    """A program to evaluate: source + language + lineage + the mutation that made it."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    source: str
    language: str = Field("", description="the name of the backend's candidate language, e.g. 'triton' or 'c' (a "
                          "ksdk.languages.Language is taken by its name)")
    parent_ids: list[str] = Field(default_factory=list)
    mutation: Optional[Mutation] = None
    created_at: float = Field(default_factory=time.time)
    generation: int = 0
    island: int = 0

    @field_validator("language", mode="before")
    @classmethod
    def _language_name(cls, value: Any) -> Any:
        return value if isinstance(value, str) else getattr(value, "name", value)

    @property
    def source_hash(self) -> str:
        """Hash of the source without blank lines and trailing spaces (comments count: no language is known)."""
        return source_hash(self.source)


class OutputCheck(Model):
    """Comparison of one output with the reference, over all correctness trials (worst case kept)."""

    index: int
    shape: list[int] = Field(default_factory=list)
    dtype: str = ""
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    ok: bool = True
    problem: Optional[str] = None


class TimingStats(Model):
    """Summary of repeated device-timed runs, in milliseconds."""

    median_ms: float
    iqr_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    n: int
    outliers: int = Field(0, description="samples beyond 1.5 IQR of the quartiles")
    method: str = Field("", description="how it was timed, e.g. 'cuda events, L2 flushed'")

    @property
    def cv(self) -> float:
        """Coefficient of variation (std / mean)."""
        return self.std_ms / self.mean_ms if self.mean_ms else float("inf")


class KernelMeta(Model):
    """What the compiler says about one compiled kernel (for feedback and diversity descriptors)."""

    name: str
    registers: Optional[int] = None
    spills: Optional[int] = None
    shared_mem_bytes: Optional[int] = None
    num_warps: Optional[int] = None
    num_stages: Optional[int] = None
    extra: dict[str, Any] = Field(default_factory=dict)


class DeviceInfo(Model):
    """Which device ran it, and the versions that make the result reproducible."""

    index: int = 0
    name: str = "cpu"
    kind: str = Field("cpu", description="'gpu', 'cpu' or 'interpreter'")
    driver: Optional[str] = None
    runtime: Optional[str] = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def host_cpu(cls, index: int = 0, **fields: Any) -> "DeviceInfo":
        """This machine's CPU, named from /proc/cpuinfo (Linux), else by the platform's processor string."""
        return cls(index=index, name=_cpu_name(), kind="cpu", **fields)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "cpu"


class EvalResult(Model):
    """The verdict on one candidate: how far it got, why it stopped, how it compares and how fast it is."""

    candidate_id: str = ""
    task: str = ""
    backend: str = ""
    backend_version: str = ""
    stage: Stage = Stage.LOAD
    status: Status = Status.FAILED
    error_kind: Optional[ErrorKind] = None
    message: str = ""
    line: Optional[int] = Field(None, description="line of the candidate's source the error points at")
    outputs: list[OutputCheck] = Field(default_factory=list)
    trials: int = 0
    candidate_timing: Optional[TimingStats] = None
    baseline_timing: Optional[TimingStats] = None
    baseline: str = Field("", description="what the speedup is measured against")
    extra_baselines: dict[str, TimingStats] = Field(default_factory=dict)
    cross_checks: dict[str, TimingStats] = Field(default_factory=dict, description="the same calls timed by another "
                                                 "tool or at other input placements, e.g. 'do_bench:candidate', "
                                                 "'placement 1 (+28 KB):candidate'")
    speedup: Optional[float] = Field(None, description="the median of the baseline's over the candidate's time per "
                                     "call in paired rounds, both measured by the judge")
    speedup_ci: Optional[tuple[float, float]] = Field(None, description="95% interval of that median")
    performance_skipped: Optional[str] = Field(None, description="why no timing was taken, when none was")
    kernels: list[KernelMeta] = Field(default_factory=list)
    device: DeviceInfo = Field(default_factory=DeviceInfo)
    versions: dict[str, str] = Field(default_factory=dict)
    wall_s: float = 0.0
    stages: dict[str, float] = Field(default_factory=dict, description="seconds per stage of the evaluation and per "
                                     "part within them (process hand-out, reference, correctness calls, checks, "
                                     "baseline and candidate timing, teardown ...)")
    device_s: float = Field(0.0, description="device-seconds this evaluation held a device")
    cached: bool = False
    warnings: list[str] = Field(default_factory=list)

    MESSAGE_LIMIT: int = Field(4000, exclude=True, repr=False)

    @property
    def correct(self) -> bool:
        """True when the candidate passed correctness (timing may or may not have run)."""
        return self.status == Status.OK and self.stage.order >= Stage.CORRECTNESS.order

    @property
    def interpreted(self) -> bool:
        """Correct in an interpreter (Triton's on a CPU), not run on a device: its own kind of verdict, never a
        speedup, never counted by `ksdk bench` nor exported as a verified device result."""
        return self.correct and self.device.kind == "interpreter"

    def verdict(self) -> str:
        """The verdict in a few words: 'ok', 'correct in an interpreter; not run on a device', or the failure."""
        if self.interpreted:
            return f"correct in {self.device.name.split(' on ')[0] or 'an interpreter'}; not run on a device"
        if self.status == Status.OK:
            return "ok"
        return f"{self.status.value}: {self.error_kind.value if self.error_kind else '?'} at stage {self.stage.value}"

    @property
    def score(self) -> float:
        """Fitness for search: the speedup when timed, 0 when correct but untimed, -1 when incorrect."""
        if not self.correct:
            return -1.0
        return float(self.speedup) if self.speedup is not None else 0.0

    def fail(self, stage: Stage, kind: ErrorKind, message: str, line: Optional[int] = None) -> "EvalResult":
        """Mark this result failed at `stage` with a trimmed message; returns self for chaining."""
        self.stage, self.status, self.error_kind, self.line = stage, Status.FAILED, kind, line
        self.message = trim_message(message, self.MESSAGE_LIMIT)
        return self

    def feedback(self) -> str:
        """The structured feedback an LLM needs to fix or improve the kernel, as compact Markdown."""
        out = [f"verdict: {self.verdict()}" if self.interpreted else
               f"verdict: {self.status.value} at stage '{self.stage.value}'"]
        if self.error_kind:
            where = f" (candidate line {self.line})" if self.line else ""
            out.append(f"error: {self.error_kind.value}{where}")
        if self.message:
            out.append("message:\n" + self.message)
        if self.outputs:
            out.append("outputs vs reference:")
            for o in self.outputs:
                mark = "ok" if o.ok else f"FAIL: {o.problem}"
                out.append(
                    f"  out[{o.index}] {o.dtype}{o.shape}: max_abs_err={o.max_abs_error:.3g}"
                    f" max_rel_err={o.max_rel_error:.3g} -> {mark}"
                )
        if self.candidate_timing:
            c = self.candidate_timing
            out.append(f"candidate time: median {c.median_ms:.4f} ms (IQR {c.iqr_ms:.4f}, n={c.n})")
        if self.baseline_timing:
            b = self.baseline_timing
            out.append(f"baseline ({self.baseline}) time: median {b.median_ms:.4f} ms (IQR {b.iqr_ms:.4f})")
        if self.speedup is not None:
            out.append(f"speedup: {self.speedup:.3f}x")
        if self.performance_skipped:
            out.append(f"performance: skipped ({self.performance_skipped})")
        for k in self.kernels:
            facts = [
                f"{name}={val}"
                for name, val in (
                    ("registers", k.registers),
                    ("spills", k.spills),
                    ("shared_mem", k.shared_mem_bytes),
                    ("num_warps", k.num_warps),
                    ("num_stages", k.num_stages),
                )
                if val is not None
            ]
            out.append(f"kernel {k.name}: " + (", ".join(facts) or "no compiler metadata"))
        for w in self.warnings:
            out.append(f"warning: {w}")
        return "\n".join(out)


def trim_message(message: str, limit: int = 4000) -> str:
    """Keep the head and tail of a long message (tracebacks end with the useful part)."""
    message = message.strip()
    if len(message) <= limit:
        return message
    head = limit // 3
    tail = limit - head - 40
    return message[:head] + f"\n... [{len(message) - head - tail} chars trimmed] ...\n" + message[-tail:]


class Availability(Model):
    """A backend's cheap self-probe: can it run here, on what, and if not, why and what fixes it."""

    name: str
    available: bool
    reason: str = ""
    fix: str = ""
    devices: list[DeviceInfo] = Field(default_factory=list)
    fallback: Optional[str] = Field(None, description="what still works without devices, e.g. an interpreter")

    @property
    def usable(self) -> bool:
        """True when candidates can be evaluated here at all (on devices, or through the fallback)."""
        return self.available or self.fallback is not None


class EvaluatorInfo(Model):
    """What an evaluator (local pool, service or cluster) runs on, and in which language and mode."""

    backend: str
    workers: int
    availability: Availability
    language: LanguageField = Field(default_factory=Language, description="the candidate language its backend "
                                    "accepts (a bare name is taken as a language with no declared syntax)")
    interpret: bool = Field(False, description="kernels run in an interpreter, not on a device: correctness only, "
                            "never a timing")
    versions: dict[str, str] = Field(default_factory=dict)
