"""Compile a C candidate into a shared object with the system compiler, and load its entry through cffi.

LOAD is what a cheap scan finds without a compiler (empty source, no definition of the entry function);
COMPILE is everything the compiler and linker say, mapped to the candidate's own line numbers.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from ksdk_cpu_example.probe import compiler

# -O2 with the host's ISA; warnings that hide real bugs in a kernel are errors. No OpenMP: timings are single-thread.
CFLAGS = ("-O2", "-march=native", "-std=gnu11", "-fPIC", "-shared", "-fdiagnostics-color=never",
          "-Werror=implicit-function-declaration", "-Werror=return-type", "-Werror=incompatible-pointer-types")
LDFLAGS = ("-Wl,--no-undefined", "-lm")
FILENAME = "candidate.c"
HEADER = "ksdk_entry.h"
COMPILE_TIMEOUT_S = 120


class CompileError(Exception):
    """The compiler or linker rejected the candidate; `line` is the candidate line it points at, if any."""

    def __init__(self, message: str, line: Optional[int] = None):
        super().__init__(message)
        self.line = line


@dataclass
class Built:
    """A compiled candidate: its shared object and the cffi function to call."""

    path: Path
    fn: Any
    ffi: Any
    lib: Any
    size_bytes: int

    def close(self) -> None:
        """dlclose the object, so a long-lived worker does not accumulate every candidate it has run."""
        self.ffi.dlclose(self.lib)


def strip_comments(source: str) -> str:
    """The source without C comments and string literals (for the cheap entry scan), newlines kept."""
    pattern = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
    return pattern.sub(lambda m: "\n" * m.group(0).count("\n") if m.group(0).startswith("/") else '""', source)


def find_entry(source: str, entry: str) -> Optional[int]:
    """Line (1-based) where `entry` is defined (a parameter list followed by a body), or None."""
    code = strip_comments(source)
    m = re.search(r"\b" + re.escape(entry) + r"\s*\([^;{}]*\)\s*\{", code)
    return code.count("\n", 0, m.start()) + 1 if m else None


@lru_cache(maxsize=1)
def compiler_version() -> str:
    cc = compiler() or "cc"
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    return out.splitlines()[0].strip() if out else "unknown"


def _cache_dir() -> Optional[Path]:
    """The compile cache: private to this user (0700, owned by them) or not used at all. Another user who could
    write into it could have this process load their code."""
    base = os.environ.get("KSDK_CPU_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "ksdk", "cpu_c")
    d = Path(base)
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = d.stat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return d


def _cached(path: Path) -> bool:
    """True when a cached object is ours and its content is what was published (its digest beside it)."""
    digest = path.with_suffix(".sha256")
    try:
        st = path.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            return False
        return digest.read_text().strip() == hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return False


_first_error = re.compile(rf"^{re.escape(FILENAME)}:(\d+):(?:\d+:)?\s*(?:fatal )?error:", re.M)


def _tidy(text: str, workdir: str) -> str:
    return text.replace(workdir + os.sep, "").strip()


def compile_source(source: str, prototype: str) -> Path:
    """Shared object for `source`, built once per (source, prototype, compiler, flags); raises CompileError."""
    cc = compiler()
    if cc is None:
        raise CompileError("no C compiler on PATH (looked for $CC, cc, gcc); install gcc or set CC")
    # The prototype is force-included, so a definition with other parameter types is a compile error
    # ("conflicting types") instead of silently reading garbage through the ABI.
    header = "#include <stdint.h>\n#include <stddef.h>\n" + prototype + "\n"
    key = hashlib.sha256("\0".join([source, header, cc, compiler_version(), *CFLAGS, *LDFLAGS]).encode())
    key = key.hexdigest()[:24]
    cache = _cache_dir()
    if cache is None:
        cache = Path(tempfile.mkdtemp(prefix="ksdk-cpu-c-"))  # private (0700), this process only
    out = cache / f"{key}.so"
    if _cached(out):
        return out
    with tempfile.TemporaryDirectory(prefix="ksdk-cc-") as wd:
        Path(wd, FILENAME).write_text(source)
        Path(wd, HEADER).write_text(header)
        tmp = Path(wd, "candidate.so")
        cmd = [cc, *CFLAGS, "-include", HEADER, FILENAME, "-o", tmp.name, *LDFLAGS]
        try:
            proc = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise CompileError(f"the C compiler ran longer than {COMPILE_TIMEOUT_S} s") from None
        if proc.returncode != 0:
            text = _tidy(proc.stderr or proc.stdout, wd)
            m = _first_error.search(text)
            if "conflicting types" in text:
                text += f"\n\nthe entry function must match this prototype exactly:\n  {prototype}"
            raise CompileError(text or f"the C compiler exited with code {proc.returncode}",
                               int(m.group(1)) if m else None)
        # Atomic publish (another worker may build the same key): copy beside the target, then rename.
        staged = out.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(tmp, staged)
        os.chmod(staged, 0o700)
        digest = hashlib.sha256(staged.read_bytes()).hexdigest()
        os.replace(staged, out)
        sidecar = out.with_suffix(f".{os.getpid()}.sha")
        sidecar.write_text(digest)
        os.replace(sidecar, out.with_suffix(".sha256"))
    return out


def load(path: Path, cdef: str, entry: str) -> Built:
    """dlopen the shared object through cffi (ABI mode) and return its entry function."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cdef)
    try:
        lib = ffi.dlopen(str(path))
        fn = getattr(lib, entry)
    except (OSError, AttributeError) as e:
        raise CompileError(f"the compiled object cannot be loaded or has no '{entry}' symbol: {e}") from None
    return Built(path=path, fn=fn, ffi=ffi, lib=lib, size_bytes=path.stat().st_size)


def build(source: str, prototype: str, entry: str) -> Built:
    """Compile and load in one step."""
    return load(compile_source(source, prototype), prototype, entry)
