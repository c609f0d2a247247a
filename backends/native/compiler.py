"""Run a dialect's compiler on a candidate (device-only) and map its errors to the candidate's own lines."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ksdk.errors import KsdkError
from ksdk_native.dialect import Dialect

SOURCE_STEM = "candidate"  # the file name the compiler sees, so its messages read "candidate.cu(12): error"


class CompileError(KsdkError):
    """The compiler rejected the source; `line` is the candidate's line of the first error, when known."""

    def __init__(self, message: str, line: Optional[int] = None):
        super().__init__(message)
        self.message, self.line = message, line


@dataclass(frozen=True)
class Compiled:
    """A loadable module image plus what made it."""

    image: bytes
    command: tuple[str, ...]
    log: str
    digest: str


# nvcc: "candidate.cu(12): error: ..."; clang-based (mxcc) and gcc: "candidate.maca:12:5: error: ..."
_ERR_PATTERNS = (
    re.compile(rf"{SOURCE_STEM}\.\w+\((\d+)\):\s*(?:fatal\s+)?error", re.I),
    re.compile(rf"{SOURCE_STEM}\.\w+:(\d+)(?::\d+)?:\s*(?:fatal\s+)?error", re.I),
)


def first_error_line(log: str) -> Optional[int]:
    """The candidate line of the compiler's first error, or None."""
    best: Optional[tuple[int, int]] = None
    for pat in _ERR_PATTERNS:
        m = pat.search(log)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), int(m.group(1)))
    return best[1] if best else None


def compile_source(dialect: Dialect, compiler: str | Path, source: str, arch: Optional[str],
                   timeout: float = 180.0, extra: tuple[str, ...] = ()) -> Compiled:
    """Compile `source` device-only into a module image; raise CompileError with the mapped line."""
    with tempfile.TemporaryDirectory(prefix="ksdk-native-") as tmp:
        src = f"{SOURCE_STEM}{dialect.source_suffix}"
        out = f"{SOURCE_STEM}.{dialect.binary_format}"
        Path(tmp, src).write_text(source)
        cmd = dialect.compile_command(compiler, src, out, arch, extra)
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CompileError(f"{Path(str(compiler)).name} did not finish within {timeout:g} s") from None
        except OSError as e:
            raise CompileError(f"cannot run {compiler}: {e}") from None
        log = (proc.stdout + proc.stderr).replace(tmp + os.sep, "").strip()
        if proc.returncode != 0:
            raise CompileError(log or f"{Path(str(compiler)).name} exited with {proc.returncode} and printed nothing",
                               first_error_line(log))
        image_path = Path(tmp, out)
        if not image_path.is_file() or image_path.stat().st_size == 0:
            raise CompileError(f"{Path(str(compiler)).name} succeeded but wrote no {dialect.binary_format} image "
                               f"(command: {' '.join(cmd)})")
        image = image_path.read_bytes()
    return Compiled(image=image, command=tuple(cmd), log=log, digest=hashlib.sha256(image).hexdigest()[:16])


def compiler_version(compiler: str | Path) -> str:
    """The compiler's self-reported version line, or '' when it cannot say."""
    try:
        out = subprocess.run([str(compiler), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    for ln in reversed(lines):  # nvcc puts "Cuda compilation tools, release X" near the end
        if "release" in ln.lower() or "version" in ln.lower():
            return ln
    return lines[0] if lines else ""
