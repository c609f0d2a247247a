"""The task side: execute the KernelBench reference on the host CPU and turn its tensors into numpy arrays."""

from __future__ import annotations

import ast
import types
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

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


class Reference:
    """The task's Model, built once; `trial(seed)` gives fresh host inputs and the reference outputs."""

    def __init__(self, name: str, source: str, seed: int):
        import torch

        torch.set_num_threads(1)  # the C candidates are single-threaded; so is the eager baseline they face
        self.torch = torch
        mod = types.ModuleType(f"ksdk_task_{name}")
        mod.__file__ = f"<task {name}>"
        exec(compile(source, f"<task {name}>", "exec"), mod.__dict__)
        self.mod = mod
        torch.manual_seed(seed)
        self.model = mod.Model(*mod.get_init_inputs()).eval()
        self.weights = [host(t) for t in self.model.state_dict().values()]

    def inputs(self, seed: int) -> list:
        """Fresh inputs from get_inputs() under `seed` (torch tensors and Python scalars)."""
        self.torch.manual_seed(seed)
        np.random.seed(seed % (2**32))
        return list(self.mod.get_inputs())

    def run(self, inputs: list) -> list[np.ndarray]:
        """The reference outputs for `inputs`, as C-contiguous numpy arrays."""
        with self.torch.no_grad():
            out = self.model(*inputs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        return [host(o) for o in outs]


def host(x: Any) -> Any:
    """A torch tensor as a C-contiguous numpy copy; Python scalars pass through."""
    if isinstance(x, (bool, int, float)):
        return x
    if hasattr(x, "detach"):
        return np.ascontiguousarray(x.detach().cpu().numpy()).copy()
    return np.ascontiguousarray(np.asarray(x))
