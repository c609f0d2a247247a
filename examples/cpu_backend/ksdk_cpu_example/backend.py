"""CpuCBackend: the plugin class registered under `ksdk.backends` as `cpu_c` (see this package's pyproject)."""

from __future__ import annotations

import importlib.metadata as md
from typing import Optional

from ksdk.interfaces.backend import Backend, RunContext, Runner
from ksdk.models import Availability
from ksdk.languages import Language
from ksdk_cpu_example import __version__
from ksdk_cpu_example import probe as _probe

HINTS = """\
Candidates are plain C (GNU C11), compiled with `cc -O2 -march=native` into a shared object and called once per run.
- Define the entry function with exactly the prototype the task states (default name `kernel`):
  void kernel(<inputs as const T*>, <model weights as const T*>, <outputs as T*>,
              <long: every dim of every input, then of every weight>)
  float32 is `float`, float64 `double`, int64 `int64_t`; all tensors are C-contiguous, row-major.
- Write every element of every output (outputs start as NaN); never write to inputs.
- Single thread only: no OpenMP, no pthreads. Speed comes from loop order (unit-stride inner loops),
  cache tiling/blocking, unrolling, `restrict` on pointer parameters, and loops the compiler can vectorise.
- <stdint.h>, <stddef.h> are included; <math.h>, <string.h> may be included; no I/O, no malloc in the hot path.
- Tunable constants: `#define TILE 32 // ksdk:tune [8, 16, 32, 64]` lets the parameter mutator search them.
"""


BASELINE_LABEL = "naive C kernel shipped with the task (C_BASELINE), same compiler and flags, same inputs, 1 thread"

# What ksdk needs to know about C to find seeds, read LLM replies, spot duplicates and name exported files.
C = Language(name="c", extensions=(".c", ".h"), fence_tags=("c", "h", "cpp", "c++"), line_comments=("//",),
             program_patterns=(r"\{", r";", r"^\s*(#include|#define|extern|static|typedef|struct|const|int|void|float|"
                                         r"double|long|unsigned)\b"))


class CpuCBackend(Backend):
    """Candidates are C source defining the task's entry function; the device is this CPU."""

    name = "cpu_c"
    language = C
    version = __version__
    needs_params = True  # the entry function receives the reference model's weights

    @classmethod
    def probe(cls) -> Availability:
        return _probe.probe()

    def hints(self) -> str:
        return HINTS

    def versions(self) -> dict[str, str]:
        from ksdk_cpu_example.compiler import CFLAGS, compiler_version

        out = {"cc": compiler_version(), "cflags": " ".join(CFLAGS), "ksdk-cpu-example": __version__}
        for pkg in ("cffi", "numpy", "torch"):
            try:
                out[pkg] = md.version(pkg)
            except md.PackageNotFoundError:
                out[pkg] = "not installed"
        return out

    def runner(self, ctx: RunContext) -> Runner:
        from ksdk_cpu_example.runner import CpuCRunner

        return CpuCRunner()

    def baseline_source(self, task_source: str) -> Optional[tuple[str, str]]:
        from ksdk_cpu_example.reference import task_spec

        base = task_spec(task_source).baseline_c
        return (BASELINE_LABEL, base) if base else None

    def warm_up(self, ctx: RunContext) -> None:
        import cffi  # noqa: F401
        import numpy  # noqa: F401
