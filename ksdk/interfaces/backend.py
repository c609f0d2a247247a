"""Backend: one accelerator plus its toolchain, reduced to primitives. The judge (ksdk/evaluation/judge.py) decides
every verdict; a backend only probes, loads, builds, runs and times, inside the candidate's sandboxed process."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional, Sequence, Union

from ksdk.languages import Language

if TYPE_CHECKING:
    from ksdk.evaluation.targets import Target
from ksdk.models import Availability, ErrorKind, EvalResult, KernelMeta, TimingSettings


@dataclass
class RunContext:
    """Where a Runner works: the device index, whether kernels run in an interpreter (no device, no timing), and
    a callback the Runner calls with True/False when a compilation starts/ends inside a call (the judge then
    charges that time to the compile limit, not the call's)."""

    device: int = 0
    interpret: bool = False
    on_compile: Callable[[bool], None] = field(default=lambda compiling: None, repr=False)


@dataclass
class TaskView:
    """What a candidate's process may know of the task: its source (the public reference), name and build seed,
    the reference model's constructor arguments, the inputs' and outputs' shapes and dtypes, and (when the backend
    asks) the reference's parameters. Never the inputs' seeds or values ahead of a call, the reference outputs or
    the policy."""

    name: str
    source: str
    seed: int
    init_inputs: list = field(default_factory=list)
    params: list = field(default_factory=list)  # the reference's state_dict, in order, as shared views
    inputs: list[dict] = field(default_factory=list)  # per get_inputs() item: {"shape", "dtype"} or {"value"}
    outputs: list[dict] = field(default_factory=list)  # per output: {"shape", "dtype"}
    overrides: dict = field(default_factory=dict)  # module-level names of the task to replace (Task.interpreter)


class CandidateError(Exception):
    """The candidate failed a primitive: the error kind, a message for the author (or LLM) and its source line."""

    def __init__(self, kind: ErrorKind, message: str, line: Optional[int] = None):
        super().__init__(message)
        self.kind, self.message, self.line = kind, message, line


@dataclass
class CallReport:
    """What a Runner observed about one call (claims: the judge trusts only what incriminates the candidate).

    `outputs`: (shape, dtype) of every output the candidate returned, written into the given views when they
    match. `launches`: kernels launched (per call when timed; None where unknown). `torch_ops`: aten ops the
    forward ran (None where not recorded). `problems`: contract violations the Runner saw (aliasing, reused
    outputs, patched harness). `kernels_seen`: a second record of the call's kernel launches (e.g. CUPTI's), names
    by kind ('jit', 'library-compute', 'library-bookkeeping', 'graph'); None with `kernel_record` saying why, and
    `kernel_record_lost` when a record that ran before the candidate's code stopped since.
    """

    outputs: list[tuple[list[int], str]] = field(default_factory=list)
    launches: Optional[int] = None
    torch_ops: Optional[list[str]] = None
    problems: list[str] = field(default_factory=list)
    compile_s: float = 0.0
    cross_checks: dict[str, list[float]] = field(default_factory=dict)  # the same calls timed by another tool
    peak_memory_bytes: Optional[int] = None
    written_by_kernels: Optional[bool] = None  # False: an output's memory reached none of the launched kernels
    method: str = ""  # how a timing was taken (time() only), e.g. "cuda events, L2 evicted before every repetition"
    kernels: list[KernelMeta] = field(default_factory=list)  # compiler metadata, once compiled (first call)
    warnings: list[str] = field(default_factory=list)  # for the record, e.g. a timing setting it cannot honour
    seed_requests: list = field(default_factory=list)  # artefacts the judge may build for later candidates (JSON
    # values the backend's seed_cache understands, e.g. a JIT's launcher signatures); untrusted
    kernels_seen: Optional[dict[str, list[str]]] = None
    kernel_record: Optional[str] = None
    kernel_record_lost: bool = False


class Runner(ABC):
    """The primitives of one candidate's evaluation, made and called inside its sandboxed process (or, for a
    task's own baseline, in the judge). Inputs and outputs are views of memory the judge shares (see
    Backend.memory); raise CandidateError for anything the candidate did wrong."""

    def setup(self, task: TaskView) -> None:
        """Learn the task before any candidate code exists here; raising says the backend cannot run this task."""
        self.task = task

    @abstractmethod
    def load(self, source: str) -> None:
        """Parse or import the candidate (no device work)."""

    @abstractmethod
    def build(self) -> list[KernelMeta]:
        """Compile or construct it; returns what the compiler says about its kernels."""

    @abstractmethod
    def call(self, inputs: list, outputs: list, record_ops: bool = False) -> CallReport:
        """Run the candidate once on `inputs`, writing its results into `outputs` (synchronised on return)."""

    @abstractmethod
    def time(self, inputs: list, outputs: list, settings: TimingSettings, share: float, warmup: Optional[int],
             turn: int = 0) -> tuple[list[float], CallReport]:
        """Device-timed repetitions (ms each) as TimingSettings asks (`share` of its repetitions, in the judge's
        `turn`-th round); the last call's results in `outputs`."""

    def prepare_batch(self, inputs: list[list], outputs: list[list], arena: Any = None, mode: str = "graph") -> str:
        """Get ready to call once per input set (values are written anew before every batch); returns how the calls
        will run: 'graph' (replayed device graphs), 'eager' or 'host'. `arena` (judge-visible memory, a view) may
        hold the outputs instead of `outputs`: then placed_outputs() says where. The judge's clock times run_batch,
        so what happens here is not timed."""
        self._batch = (inputs, outputs)
        return "eager"

    def run_batch(self, passes: int = 1) -> None:
        """The prepared calls, back to back, each call's results into its outputs (or its places in the arena),
        `passes` times over; synchronise at the end. The judge times this with its own clock and checks the outputs."""
        for _ in range(passes):
            for ins, outs in zip(*self._batch):
                self.call(ins, outs)

    def run_batch_timed(self, passes: int = 1) -> Optional[float]:
        """run_batch, timed by this process's own device clock (ms, or None where it has none): asked once per
        evaluation when the task wants the candidate's own timing, kept as a record beside the judge's clock. A Runner
        may also set `batch_notes` (name -> float, e.g. its allocator's cudaMalloc calls in the batch): a record too."""
        self.run_batch(passes)
        return None

    def placed_outputs(self) -> Optional[list[list[int]]]:
        """Where the prepared (or last run) batch writes each call's outputs: byte offsets into the arena, per call
        and output; None when they go to the `outputs` given."""
        return None

    def synchronize(self) -> None:
        """Wait for the device (the judge measures this round trip before any candidate code exists)."""

    def close(self) -> None:
        """Release what the candidate loaded."""


def run_passes(run: Callable, passes: int):
    """run(passes=passes) where a Runner's batch method takes passes; otherwise run() that many times (each
    synchronised: slower, never faster). The last result."""
    import inspect

    if "passes" in inspect.signature(run).parameters:
        return run(passes=passes)
    for _ in range(passes):
        out = run()
    return out


class Backend(ABC):
    """An accelerator backend, registered under the `ksdk.backends` entry-point group.

    `probe` and `__init__` must be cheap and import no heavy toolchain. `runner` is called in the candidate's
    sandboxed process; the other methods in the judge's process.
    """

    name: ClassVar[str] = ""
    # The candidate language it accepts: a ksdk.languages.Language (name, file types, code fences, comments), or
    # just a name, e.g. "triton", for a language ksdk then knows nothing of.
    language: ClassVar[Union[Language, str]] = ""
    version: ClassVar[str] = "0"
    needs_params: ClassVar[bool] = False  # True: TaskView.params carries the reference's weights
    requires_kernels: ClassVar[bool] = False  # True: a forward that launches none of the backend's kernels is a hack
    host_code: ClassVar[bool] = True  # candidates' code runs on the host in the Runner's process, where it could
    # patch any timing there: the judge's own clock times them. False: candidates are device code only (loaded
    # through a driver's module API), and the Runner's device timing is the backend's trusted code
    places_outputs: ClassVar[bool] = False  # True: the Runner places a batch's outputs in an arena of judge-visible
    # memory (its allocator hands it out), so timed calls write outputs where the judge reads them, with no copy

    @classmethod
    @abstractmethod
    def probe(cls) -> Availability:
        """Can this backend run here, on which devices; if not, why and what fixes it. Cheap and static."""

    @abstractmethod
    def runner(self, ctx: RunContext) -> Runner:
        """A Runner for one candidate (in its sandboxed process) or for a task's own baseline (in the judge)."""

    def reference_device(self, ctx: RunContext) -> str:
        """The torch device on which the judge makes inputs, runs the reference and compares ('cuda', 'cpu')."""
        return "cpu"

    def target(self, ctx: RunContext) -> "Target":
        """Where the judge computes references and how it waits for, evicts and probes that device
        (ksdk.evaluation.targets); by default from reference_device()."""
        from ksdk.evaluation.targets import for_device

        return for_device("cpu" if ctx.interpret else self.reference_device(ctx))

    def memory(self, ctx: RunContext) -> Any:
        """How the judge and the Runner share inputs and outputs (ksdk.evaluation.shared.SharedMemory); host
        shared memory unless the device can share its own."""
        from ksdk.evaluation.shared import HostMemory

        return HostMemory(view="numpy")

    def baseline_source(self, task_source: str) -> Optional[tuple[str, str]]:
        """(label, source) of a baseline the task ships for this backend (a naive kernel), timed by this backend's
        Runner in the judge; None: the judge times the task's reference Model."""
        return None

    def hints(self) -> str:
        """What kernels on this backend may use and must avoid (shown to LLM mutators)."""
        return ""

    def versions(self) -> dict[str, str]:
        """Toolchain and runtime versions that make a result reproducible."""
        return {}

    def warm_up(self, ctx: RunContext) -> None:
        """Import the heavy toolchain once per process before it reports ready (a standby process then takes a
        candidate with nothing left to load). Must not touch the device. Raising marks the process unusable."""

    def seed_cache(self, ctx: RunContext, folder: Path, requests: Sequence[Any] = ()) -> None:
        """Build into `folder` (private to the judge) toolchain artefacts that no candidate's code produced, such as
        a JIT's driver utilities; each candidate's process gets a copy of the folder in its own scratch, so none
        builds them again and none can alter another's. Called in a thread of the judge's: once with no
        `requests`, then with what candidates' Runners asked for (CallReport.seed_requests: untrusted claims,
        validate every one). Default: nothing."""

    @classmethod
    def device_env(cls, device: int) -> dict[str, str]:
        """Environment that binds a worker process to one device (e.g. CUDA_VISIBLE_DEVICES)."""
        return {}

    @classmethod
    def env_allowlist(cls) -> tuple[str, ...]:
        """Extra environment variables (names or prefixes ending in '*') a worker may see."""
        return ()

    @classmethod
    def sandbox_paths(cls) -> list[str]:
        """Toolchain folders the candidate's sandbox must see (read-only), beyond the Python environment."""
        return []

    @classmethod
    def sandbox_devices(cls, ctx: RunContext) -> list[str]:
        """Device nodes (globs, e.g. /dev/nvidia*) the candidate's sandbox needs."""
        return []

    def telemetry(self, ctx: RunContext) -> dict:
        """Device state recorded around the performance stage (clocks, temperature, throttling), in the judge."""
        return {}

    def memory_used(self, ctx: RunContext) -> Optional[int]:
        """Bytes in use on the device by every process, or None (the default: unknown). The judge samples it
        during an evaluation and reports the peak the evaluation added (`device_peak_memory_bytes`)."""
        return None

    def memory_by_process(self, ctx: RunContext) -> Optional[dict[int, int]]:
        """Bytes in use on the device per process id, or None (the default: unknown). Read when the sampled total
        reaches a new peak, to say whose memory the peak is (`device_peak_by_role`)."""
        return None

    def sticky_error(self, result: EvalResult) -> bool:
        """True when the judge's own process can no longer be trusted after this result (its device context)."""
        return False
