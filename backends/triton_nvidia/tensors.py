"""Tensor plumbing for the harness: inputs on the evaluation device, clones, comparable outputs, storages, poisoning."""

from __future__ import annotations

from typing import Any

import torch


def flatten(out: Any) -> list:
    """A model's output as a flat list (a tensor, or a tuple/list of tensors and numbers)."""
    if isinstance(out, (tuple, list)):
        items = []
        for o in out:
            items.extend(flatten(o))
        return items
    return [out]


def to_device(obj: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) list/tuple to `device`; other values pass through."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(o, device) for o in obj)
    return obj


def clone(obj: Any) -> Any:
    """Deep copy of tensors (fresh storage), other values as they are."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, (list, tuple)):
        return type(obj)(clone(o) for o in obj)
    return obj


def comparable(outputs: list, device: torch.device) -> tuple[list[torch.Tensor], list[str]]:
    """Outputs as detached tensors on `device` (numbers become 0-d tensors) and their dtype names: compared
    where they live, since copying large outputs to the host and comparing there dominated evaluation time."""
    tensors, names = [], []
    for o in outputs:
        t = o.detach() if isinstance(o, torch.Tensor) else torch.as_tensor(o, device=device)
        tensors.append(t)
        names.append(str(t.dtype).replace("torch.", ""))
    return tensors, names


def storage(t: Any) -> tuple[int, int] | None:
    """(address, bytes) of a tensor's whole storage, or None for non-tensors."""
    if not isinstance(t, torch.Tensor):
        return None
    s = t.untyped_storage()
    return s.data_ptr(), s.nbytes()


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """True when two (address, bytes) ranges share at least one byte."""
    (pa, na), (pb, nb) = a, b
    return na > 0 and nb > 0 and pa < pb + nb and pb < pa + na


def storages(obj: Any) -> list[tuple[int, int]]:
    return [s for s in (storage(t) for t in flatten(obj)) if s is not None]


def same_values(a: Any, b: Any) -> bool:
    """Bitwise equality of two (nested) tensor collections (for 'did the inputs change?')."""
    fa, fb = flatten(a), flatten(b)
    if len(fa) != len(fb):
        return False
    for x, y in zip(fa, fb):
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            if x.shape != y.shape or not torch.equal(x, y):
                return False
    return True


class Poison:
    """Fill memory the next allocations will likely receive with NaN bytes (0xFF), so an output a candidate
    forgot to write, or one read from another run's leftovers, shows up as NaN/garbage.

    PyTorch's caching allocator (and glibc on the CPU) hands out best-fitting free blocks of the requested
    size, so allocating, filling and freeing a few blocks of each output's size puts NaN into exactly the
    blocks the candidate's `torch.empty(...)` would get next.
    """

    COPIES = 8

    def __init__(self, device: torch.device):
        self.device = device
        self.sizes: list[int] = []

    def sizes_from(self, specs: list[dict]) -> None:
        """Remember the byte sizes of outputs described as {"shape", "dtype"} (and their total)."""
        sizes = []
        for spec in specs:
            n = torch.empty(0, dtype=getattr(torch, spec["dtype"])).element_size()
            for d in spec["shape"]:
                n *= int(d)
            sizes.append(n)
        self.sizes = sorted(set(sizes + ([sum(sizes)] if len(sizes) > 1 else [])))

    def learn(self, outputs: list) -> None:
        """Remember the byte sizes of the reference outputs (and their total)."""
        sizes = [t.untyped_storage().nbytes() for t in outputs if isinstance(t, torch.Tensor)]
        self.sizes = sorted(set(sizes + ([sum(sizes)] if len(sizes) > 1 else [])))

    def __call__(self) -> None:
        blocks = []
        for n in self.sizes:
            for _ in range(self.COPIES):
                blocks.append(torch.empty(n, dtype=torch.uint8, device=self.device).fill_(255))
        del blocks
