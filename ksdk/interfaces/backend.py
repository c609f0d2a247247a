"""Backend: one accelerator plus its toolchain. It loads, compiles, checks and times; it never decides policy."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Union

from ksdk.languages import Language
from ksdk.models import Availability, Candidate, EvalResult, Stage, Task


@dataclass
class EvalContext:
    """What a worker hands a backend for one evaluation: the device, the mode, and a stage reporter."""

    device: int = 0
    interpret: bool = False  # no device: run kernels in an interpreter, skip timing
    on_stage: Callable[[Stage], None] = field(default=lambda stage: None)
    skip_performance: bool = False

    def stage(self, stage: Stage) -> None:
        """Tell the evaluator a stage starts (it applies that stage's timeout from here)."""
        self.on_stage(stage)


class Backend(ABC):
    """An accelerator backend, registered under the `ksdk.backends` entry-point group.

    `probe` and `__init__` must be cheap and import no heavy toolchain; `evaluate` runs in a worker process.
    """

    name: ClassVar[str] = ""
    # The candidate language it accepts: a ksdk.languages.Language (name, file types, code fences, comments), or
    # just a name, e.g. "triton", for a language ksdk then knows nothing of.
    language: ClassVar[Union[Language, str]] = ""
    version: ClassVar[str] = "0"

    @classmethod
    @abstractmethod
    def probe(cls) -> Availability:
        """Can this backend run here, on which devices; if not, why and what fixes it. Cheap and static."""

    @abstractmethod
    def evaluate(self, task: Task, candidate: Candidate, ctx: EvalContext) -> EvalResult:
        """Run load, compile, correctness and performance in this process, reporting stages to `ctx`."""

    def hints(self) -> str:
        """What kernels on this backend may use and must avoid (shown to LLM mutators)."""
        return ""

    def versions(self) -> dict[str, str]:
        """Toolchain and runtime versions that make a result reproducible."""
        return {}

    def warm_up(self, ctx: EvalContext) -> None:
        """Load the heavy toolchain and runtime once per worker, before it reports ready (so a standby worker
        takes over with nothing left to load). Raising here marks the worker as unable to start."""

    @classmethod
    def device_env(cls, device: int) -> dict[str, str]:
        """Environment that binds a worker process to one device (e.g. CUDA_VISIBLE_DEVICES)."""
        return {}

    @classmethod
    def env_allowlist(cls) -> tuple[str, ...]:
        """Extra environment variables (names or prefixes ending in '*') a worker may see."""
        return ()

    def sticky_error(self, result: EvalResult) -> bool:
        """True when the process can no longer be trusted after this result (e.g. a sticky CUDA error)."""
        return False
