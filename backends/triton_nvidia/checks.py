"""Anti-cheat checks: what a candidate must not touch (integrity snapshot) and how its outputs must relate
to its inputs and to earlier outputs. Every failure here is ErrorKind.REWARD_HACK (or ALIASING), fail closed."""

from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np
import torch

from ksdk_triton_nvidia import tensors


def _attr(owner: Any, path: str) -> Any:
    obj = owner
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


# Functions a candidate could replace to fake timing, seeding, streams, inputs or comparisons.
_GUARDED = {
    time: ("perf_counter", "perf_counter_ns", "time", "time_ns", "monotonic", "monotonic_ns", "process_time"),
    torch: ("manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state", "randn", "rand", "randint",
            "randn_like", "rand_like", "empty", "empty_like", "zeros", "equal", "allclose", "no_grad",
            "Tensor.clone", "Tensor.copy_", "Tensor.fill_", "Tensor.zero_", "Tensor.cpu", "Tensor.numpy",
            "Tensor.to", "Tensor.float", "Tensor.detach", "Tensor.data_ptr", "Tensor.untyped_storage",
            "nn.Module.__call__", "nn.Module._call_impl", "random.manual_seed", "random.seed",
            "cuda.Event", "cuda.Event.record", "cuda.Event.elapsed_time", "cuda.Event.synchronize",
            "cuda.Event.wait", "cuda.synchronize", "cuda.current_stream", "cuda.default_stream", "cuda.set_stream",
            "cuda.stream", "cuda.Stream", "cuda.Stream.wait_event", "cuda.Stream.record_event",
            "cuda.ExternalStream", "cuda.manual_seed", "cuda.manual_seed_all", "cuda.empty_cache"),
    np: ("abs", "asarray", "isfinite", "percentile", "median", "where", "allclose", "ptp", "random.seed"),
}


class Integrity:
    """Identity snapshot of guarded objects (torch, time, numpy, the harness, the task), taken before the
    candidate is imported; `changed()` lists what the candidate replaced since."""

    def __init__(self) -> None:
        self.owners: dict[str, Any] = {"time": time, "torch": torch, "numpy": np}
        self.snapshot: dict[str, Any] = {}
        for owner, names in _GUARDED.items():
            for name in names:
                self.snapshot[f"{owner.__name__}:{name}"] = _attr(owner, name)

    def guard(self, label: str, owner: Any) -> None:
        """Guard every function, class and method `owner` (a module or a class) defines, under `label`."""
        self.owners[label] = owner
        for name, value in vars(owner).items():
            if name.startswith("__") and name not in ("__call__", "__init__"):
                continue
            if callable(value) or isinstance(value, (staticmethod, classmethod, property)):
                self.snapshot[f"{label}:{name}"] = value

    def changed(self) -> list[str]:
        """Names (label:attribute) whose object is no longer the one snapshotted."""
        bad = []
        for key, value in self.snapshot.items():
            label, _, path = key.partition(":")
            owner = self.owners.get(label)
            current = vars(owner).get(path) if isinstance(owner, type) and "." not in path else _attr(owner, path)
            if current is not value:
                bad.append(key)
        return bad


def settle_torch(source: str, compile_baseline: bool) -> None:
    """Import what replaces torch functions on its first import (torch._dynamo wraps torch.manual_seed) before
    the snapshot, so torch.compile in the baseline or in a candidate is not taken for tampering. Only when the
    task asks for the torch.compile baseline or the candidate mentions compile, dynamo or inductor: the import takes
    ~1.7 s. (Importing torch's other public submodules changes nothing guarded.)"""
    if compile_baseline or any(word in source for word in ("compile", "dynamo", "inductor")):
        import torch._dynamo  # noqa: F401


def new_integrity(owners: dict[str, Any]) -> Integrity:
    """A snapshot of torch/time/numpy plus `owners` (label -> module or class)."""
    integ = Integrity()
    for label, owner in owners.items():
        integ.guard(label, owner)
    return integ


def aliasing_problem(outputs: list, inputs: Any) -> Optional[str]:
    """Text naming the output that shares memory with an input, or None."""
    ins = tensors.storages(inputs)
    for i, o in enumerate(outputs):
        s = tensors.storage(o)
        if s is None:
            continue
        for j, x in enumerate(ins):
            if tensors.overlaps(s, x):
                return (f"output {i} shares memory with input {j}: return a newly allocated tensor "
                        "(torch.empty_like(x)) that your kernel writes, not a view of an input")
    return None


def reuse_problem(outputs: list, earlier: list[tuple[int, int]]) -> Optional[str]:
    """Text naming the output that lives in an earlier call's (still alive) output memory, or None."""
    for i, o in enumerate(outputs):
        s = tensors.storage(o)
        if s is not None and any(tensors.overlaps(s, e) for e in earlier):
            return (f"output {i} reuses the memory of an output returned by an earlier call: outputs must be "
                    "newly allocated on every call (no caching or preallocated output buffers)")
    return None


def unwritten_problem(outputs: list, launched: list[tuple[int, int]]) -> Optional[str]:
    """Text naming an output whose memory no Triton kernel received during the call, or None."""
    for i, o in enumerate(outputs):
        s = tensors.storage(o)
        if s is not None and s[1] > 0 and not any(tensors.overlaps(s, w) for w in launched):
            return (f"output {i} was computed by PyTorch ops alone: no Triton kernel launched during forward "
                    "received its memory; the output must be written by your Triton kernel")
    return None
