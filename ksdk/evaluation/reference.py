"""The task's reference inside the judge: its module, its Model on the reference device, inputs made on that
device from seeds only the judge knows, and reference outputs computed per trial (then released)."""

from __future__ import annotations

import random
import sys
import types
import uuid
from typing import Any, Optional

from ksdk.models import Task


class TaskFailure(Exception):
    """The task itself failed (its module, Model or get_inputs): an infrastructure verdict naming the fix."""


def flatten(out: Any) -> list:
    """A model's output as a flat list (a tensor, or nested tuples/lists of tensors and numbers)."""
    if isinstance(out, (tuple, list)):
        items = []
        for o in out:
            items.extend(flatten(o))
        return items
    return [out]


def as_tensor(x: Any, device: str):
    """A torch tensor for a reference value (numpy arrays and numbers included), on `device`."""
    import numpy as np
    import torch

    if isinstance(x, torch.Tensor):
        return x.detach().to(device)
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x)).to(device)
    return torch.as_tensor(x, device=device)


class Reference:
    """The task's Model built once (seeded with task.seed, on the CPU as a candidate builds its ModelNew, then moved
    to `device`) and kept as constructed, in training mode, as KernelBench evaluates it (BatchNorm normalises with
    the batch's statistics; the candidate's ModelNew is in the same mode); `inputs(seed)` makes one trial's inputs
    on `device`, `forward` computes its reference outputs."""

    def __init__(self, task: Task, device: str, overrides: Optional[dict] = None):
        import torch

        self.task, self.device = task, device
        name = f"ksdk_task_{uuid.uuid4().hex[:8]}"
        module = types.ModuleType(name)
        module.__file__ = task.path or f"<task {task.name}>"
        sys.modules[name] = module  # dataclasses and pickling look modules up by name
        try:
            exec(compile(task.source, module.__file__, "exec"), module.__dict__)
            module.__dict__.update(overrides or {})  # e.g. a smaller SHAPE for an interpreter
            for attr in ("Model", "get_inputs", "get_init_inputs"):
                if not hasattr(module, attr):
                    raise TaskFailure(f"the task file defines no `{attr}` (KernelBench format)")
            self.init_inputs = list(module.get_init_inputs())
            self._seed(task.seed)
            model = module.Model(*self.init_inputs)
            if isinstance(model, torch.nn.Module):
                model = model.to(device)
                self.params = [t.detach() for t in model.state_dict().values()]
            else:
                self.params = []
        except TaskFailure:
            raise
        except Exception as e:  # noqa: BLE001 - the task's own code: its failure is the task's
            sys.modules.pop(name, None)
            raise TaskFailure(f"the task's reference failed before any candidate ran (fix the task file): "
                              f"{type(e).__name__}: {e}") from None
        self.module, self.model = module, model
        # KernelBench models are nn.Modules (callable); a plain object's forward does as well
        self.call = model if callable(model) else model.forward

    @staticmethod
    def _seed(seed: int) -> None:
        import numpy as np
        import torch

        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def inputs(self, seed: int) -> list:
        """One input set from get_inputs() under `seed`, created on the reference device (tensors made on the
        CPU by explicit request are moved there)."""
        import torch

        self._seed(seed)
        try:
            with torch.device(self.device):
                raw = list(self.module.get_inputs())
        except Exception as e:  # noqa: BLE001
            raise TaskFailure(f"the task's get_inputs() failed: {type(e).__name__}: {e}") from None
        return [x.to(self.device) if isinstance(x, torch.Tensor) and x.device.type != self.device.split(":")[0]
                else x for x in raw]

    def input_elements(self) -> Optional[int]:
        """How many elements one input set has, from get_inputs() run on PyTorch's meta device (no memory, no
        time); None when it cannot run there (it reads values, say)."""
        import torch

        try:
            with torch.device("meta"):
                raw = list(self.module.get_inputs())
        except Exception:  # noqa: BLE001 - the real run reports a real failure
            return None
        return sum(int(x.numel()) for x in raw if isinstance(x, torch.Tensor))

    def forward(self, inputs: list) -> list:
        """The reference outputs for `inputs`, as torch tensors on the reference device."""
        import torch

        try:
            with torch.no_grad():
                out = self.call(*inputs)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as e:  # noqa: BLE001
            raise TaskFailure(f"the task's Model.forward failed: {type(e).__name__}: {e}") from None
        return [as_tensor(o, self.device) for o in flatten(out)]

    def close(self) -> None:
        """Unregister the task's module (it stays registered while the reference lives: torch.compile and
        pickling look classes up by their module's name)."""
        sys.modules.pop(self.module.__name__, None)

    def json_init_inputs(self) -> list:
        """The constructor arguments, as JSON values where they are plain data (others become None)."""
        out = []
        for x in self.init_inputs:
            out.append(x if isinstance(x, (int, float, str, bool, list, tuple, dict)) or x is None else None)
        return out
