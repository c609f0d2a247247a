"""What a task file says for the cpu_c backend, read without running it: the entry name and a naive C baseline."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Optional

DEFAULT_ENTRY = "kernel"


@dataclass
class TaskSpec:
    """What the task file says for this backend: the entry name and an optional naive C baseline."""

    entry: str = DEFAULT_ENTRY
    baseline_c: Optional[str] = None


def task_spec(source: str) -> TaskSpec:
    """Read the module-level literals C_ENTRY and C_BASELINE from the task file (without running it)."""
    spec = TaskSpec()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("C_ENTRY", "C_BASELINE"):
                value = ast.literal_eval(node.value)
                if not isinstance(value, str):
                    raise ValueError(f"{name} in the task file must be a string literal")
                if name == "C_ENTRY":
                    spec.entry = value
                else:
                    spec.baseline_c = value
    return spec
