"""Turn an exception raised by candidate code into (error kind, message, candidate line)."""

from __future__ import annotations

import re
import traceback
from typing import Any, Optional

from ksdk.models import ErrorKind
from ksdk_triton_nvidia.loading import candidate_frames, last_candidate_line, render

# Errors after which the CUDA context cannot be trusted (the worker must be recycled).
STICKY = re.compile(
    r"illegal memory access|misaligned address|unspecified launch failure|illegal instruction|"
    r"device-side assert|an illegal|CUDA error: (?!out of memory)|CUDA_ERROR_(?!OUT_OF_MEMORY)|"
    r"cudaErrorIllegal|hardware exception|uncorrectable ECC|launch timed out",
    re.I,
)
COMPILE_ERRORS = {"CompilationError", "CompileTimeAssertionFailure", "UnsupportedLanguageConstruct",
                  "OutOfResources", "PTXASError", "MLIRCompilationError"}
INTERPRET_HINT = ("in Triton's interpreter tensors live on the CPU: allocate with torch.empty_like(x) or "
                  "device=x.device instead of device='cuda'")


def _chain(exc: BaseException):
    seen = set()
    e: Optional[BaseException] = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def kernel_names(module: Any) -> set[str]:
    """Names of the @triton.jit functions a candidate module defines (through autotune/heuristics wrappers)."""
    names = set()
    for obj in vars(module).values():
        inner, depth = obj, 0
        while inner is not None and depth < 6 and hasattr(inner, "fn"):
            inner, depth = inner.fn, depth + 1
        if depth and callable(inner) and hasattr(inner, "__name__"):
            names.add(inner.__name__)
    return names


def _compile_error_line(exc: BaseException, source: str) -> tuple[Optional[str], Optional[int], str]:
    """Kernel name, absolute candidate line and a one-line summary for a triton CompilationError."""
    src = getattr(exc, "src", None)
    node = getattr(exc, "node", None)
    rel = getattr(node, "lineno", None)
    name = None
    if isinstance(src, str):
        m = re.search(r"^\s*def\s+(\w+)\s*\(", src, re.M)
        name = m.group(1) if m else None
    line = None
    if name and rel:
        lines = source.split("\n")
        def_line = next((i + 1 for i, t in enumerate(lines) if re.match(rf"\s*def\s+{name}\s*\(", t)), None)
        src_def = next((i for i, t in enumerate(src.split("\n")) if re.match(rf"\s*def\s+{name}\s*\(", t)), 0)
        if def_line:
            line = def_line + (rel - 1 - src_def)
    summary = (getattr(exc, "error_message", None) or "").strip() or str(exc).strip().split("\n")[-1]
    return name, line, summary


def classify(exc: BaseException, path: str, source: str, kernels: set[str], first_call: bool,
             interpret: bool) -> tuple[ErrorKind, str, Optional[int]]:
    """Kind, message and line for an exception raised while running the candidate."""
    chain = list(_chain(exc))
    names = {type(e).__name__ for e in chain}
    text = "\n".join(f"{type(e).__name__}: {e}" for e in chain)
    line = last_candidate_line(exc, path)
    lines = source.split("\n")

    def at(n: Optional[int]) -> str:
        return f"\n  candidate.py:{n}: {lines[n - 1].strip()}" if n and 0 < n <= len(lines) else ""

    for e in chain:
        if type(e).__name__ in COMPILE_ERRORS:
            name, cline, summary = _compile_error_line(e, source)
            cline = cline or line
            who = f"kernel `{name}`" if name else "a Triton kernel"
            msg = f"Triton failed to compile {who}" + (f" at line {cline}" if cline else "") + f": {summary}{at(cline)}"
            return ErrorKind.COMPILE, msg + "\n" + str(e).replace(path, "candidate.py")[-1500:], cline
    if "OutOfMemoryError" in names or "CUDA out of memory" in text:
        return ErrorKind.OOM, render(exc, path), line
    if STICKY.search(text):
        why = "the device reported a fault (the worker is recycled): "
        return ErrorKind.DEVICE_FAULT, why + render(exc, path), line
    if interpret and kernels:
        # The interpreter traces kernels by running them: an error inside a kernel body is what the
        # compiler would have rejected, so on the first call it counts as a compile error.
        frames = [f for e in chain for f in candidate_frames(e.__traceback__, path) if f.name in kernels]
        if frames and first_call:
            f = frames[-1]
            inner = chain[-1] if len(chain) > 1 else exc
            msg = (f"kernel `{f.name}` failed in Triton's interpreter at line {f.lineno}: "
                   f"{type(inner).__name__}: {inner}{at(f.lineno)}")
            return ErrorKind.COMPILE, msg.replace(path, "candidate.py"), f.lineno
    msg = render(exc, path)
    if interpret and re.search(r"cuda|nvidia|Torch not compiled with CUDA", text, re.I):
        msg += "\nhint: " + INTERPRET_HINT
    return ErrorKind.RUNTIME, msg, line


def format_tb(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
