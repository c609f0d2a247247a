"""Read KernelBench-format task files into Task models, checking their shape without running them."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ksdk.errors import TaskError
from ksdk.models import Task

REQUIRED = ("Model", "get_inputs", "get_init_inputs")
SETTINGS_NAME = "KSDK_TASK"  # optional literal dict in the task file: tolerances, trials, timing, ...


def check_reference(source: str, filename: str = "<task>") -> dict[str, Any]:
    """Parse a task file; return its KSDK_TASK settings. Raises TaskError naming what is missing and where."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        raise TaskError(f"{filename}:{e.lineno}: syntax error in the task file: {e.msg}") from None
    names = set()
    settings: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    names.add(t.id)
                    if t.id == SETTINGS_NAME:
                        try:
                            settings = ast.literal_eval(node.value)
                        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                            raise TaskError(
                                f"{filename}:{node.lineno}: {SETTINGS_NAME} must be a literal dict "
                                "(numbers, strings, lists, dicts only)"
                            ) from None
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise TaskError(
            f"{filename}: not a KernelBench-format task: missing {', '.join(missing)} "
            "(a task defines class Model(nn.Module), get_inputs() and get_init_inputs())"
        )
    if not isinstance(settings, dict) or not all(isinstance(k, str) for k in settings):
        raise TaskError(f"{filename}: {SETTINGS_NAME} must be a dict with string keys (Task field names)")
    return settings


def _build(label: str, fields: dict[str, Any]) -> Task:
    try:
        return Task(**fields)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise TaskError(f"{label}: bad task setting '{loc}': {first['msg']}") from None


def load_task(path: str | Path, **overrides: Any) -> Task:
    """Build a Task from a KernelBench-format file; KSDK_TASK in the file, then overrides, set policy."""
    p = Path(path)
    if not p.is_file():
        raise TaskError(f"task file not found: {p} (give the path of a KernelBench-format .py file)")
    try:
        source = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TaskError(f"{p}: not a UTF-8 text file ({e.reason} at byte {e.start}); save the task as UTF-8") from None
    settings = check_reference(source, str(p))
    # A task in a folder of its own (FOLDER/task.py beside its seed) is named by the folder; KSDK_TASK's "name"
    # and the `name` override win over both.
    name = p.resolve().parent.name if p.name == "task.py" and p.resolve().parent.name else p.stem
    fields = {"name": name, "source": source, "path": str(p.resolve())}
    fields.update(settings)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return _build(str(p), fields)


def task_from_source(name: str, source: str, **settings: Any) -> Task:
    """A Task from source text (tests, services); validated like a file."""
    fields = dict(check_reference(source, name))
    fields.update(settings)
    fields.update(name=name, source=source)
    return _build(name, fields)
