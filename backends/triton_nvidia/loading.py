"""Load the task and the candidate as modules from their source text, with errors on the candidate's own lines."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import traceback
import types
import uuid
from dataclasses import dataclass
from typing import Optional

from ksdk.models import ErrorKind

ENTRY = "ModelNew"


@dataclass
class LoadFailure(Exception):
    """The candidate (or task) could not be loaded: the error kind, a message and the candidate line."""

    kind: ErrorKind
    message: str
    line: Optional[int] = None


class SourceFiles:
    """A private temp folder holding the sources as real files, so inspect/Triton can read them and
    tracebacks carry their line numbers (the file name is then mapped back to 'candidate.py')."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ksdk-triton-")

    def write(self, stem: str, source: str) -> str:
        path = os.path.join(self.dir, f"{stem}.py")
        with open(path, "w") as f:
            f.write(source)
        return path

    def cleanup(self) -> None:
        for name in os.listdir(self.dir):
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


def candidate_frames(tb: Optional[types.TracebackType], filename: str) -> list[traceback.FrameSummary]:
    """Frames of a traceback that lie in the candidate's file, innermost last."""
    return [f for f in traceback.extract_tb(tb) if f.filename == filename]


def last_candidate_line(exc: BaseException, filename: str) -> Optional[int]:
    """The innermost candidate line an exception passed through (following its causes), if any."""
    seen: set[int] = set()
    e: Optional[BaseException] = exc
    best: Optional[int] = None
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        frames = candidate_frames(e.__traceback__, filename)
        if frames:
            best = frames[-1].lineno
        if isinstance(e, SyntaxError) and e.filename == filename and e.lineno:
            best = e.lineno
        e = e.__cause__ or e.__context__
    return best


def render(exc: BaseException, filename: str, shown: str = "candidate.py") -> str:
    """The exception as text, with only the candidate's frames kept and its temp path renamed."""
    lines = [f"{type(exc).__name__}: {exc}".rstrip()]
    frames = candidate_frames(exc.__traceback__, filename)
    if frames:
        lines.append("candidate traceback (innermost last):")
        for f in frames[-6:]:
            lines.append(f"  {shown}:{f.lineno} in {f.name}: {(f.line or '').strip()}")
    return "\n".join(lines).replace(filename, shown)


def import_module(path: str, stem: str) -> types.ModuleType:
    """Execute the file at `path` as a fresh module (unique name, registered while it lives)."""
    name = f"ksdk_{stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def load_candidate(files: SourceFiles, source: str) -> tuple[types.ModuleType, str]:
    """Import the candidate; returns (module, its file path). Raises LoadFailure naming the candidate line."""
    path = files.write("candidate", source)
    try:
        compile(source, path, "exec")
    except SyntaxError as e:
        text = (e.text or "").rstrip()
        where = f"\n  candidate.py:{e.lineno}: {text.strip()}" if text else ""
        raise LoadFailure(ErrorKind.SYNTAX, f"SyntaxError: {e.msg} (line {e.lineno}){where}", e.lineno) from None
    try:
        module = import_module(path, "candidate")
    except (ImportError, ModuleNotFoundError) as e:
        raise LoadFailure(ErrorKind.IMPORT, render(e, path), last_candidate_line(e, path)) from None
    except Exception as e:
        raise LoadFailure(
            ErrorKind.IMPORT, "importing the candidate raised " + render(e, path), last_candidate_line(e, path)
        ) from None
    entry = getattr(module, ENTRY, None)
    if entry is None:
        raise LoadFailure(
            ErrorKind.MISSING_ENTRY,
            f"the candidate defines no `{ENTRY}`: define `class {ENTRY}(nn.Module)` with the reference Model's "
            "constructor and forward signature",
        )
    if not isinstance(entry, type):
        raise LoadFailure(ErrorKind.MISSING_ENTRY,
                          f"`{ENTRY}` must be a class (an nn.Module), got {type(entry).__name__}")
    return module, path


def load_task_module(files: SourceFiles, source: str) -> types.ModuleType:
    """Import the task (reference); a failure here is the task's fault, raised as RuntimeError with its text."""
    path = files.write("task", source)
    try:
        module = import_module(path, "task")
    except Exception as e:
        raise RuntimeError("the task file failed to import: " + render(e, path, "task.py")) from None
    for name in ("Model", "get_inputs", "get_init_inputs"):
        if not hasattr(module, name):
            raise RuntimeError(f"the task file defines no `{name}` (KernelBench format)")
    return module


def forget(module: types.ModuleType) -> None:
    """Drop a loaded module from sys.modules so the next candidate starts clean."""
    sys.modules.pop(module.__name__, None)
