"""Tensor plumbing for the candidate's side: flattened outputs, storages and their overlaps, poisoning."""

from __future__ import annotations

from typing import Any

import torch

from ksdk.evaluation.reference import flatten
from ksdk.evaluation.shared import nbytes


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


class Poison:
    """Fill memory the next allocations will likely receive with NaN bytes (0xFF), so an output a candidate
    forgot to write, or one read from another run's leftovers, shows up as NaN/garbage.

    PyTorch's caching allocator (and glibc on the CPU) hands out best-fitting free blocks of the requested
    size, so allocating, filling and freeing a few blocks of each output's size puts NaN into exactly the
    blocks the candidate's `torch.empty(...)` would get next.
    """

    COPIES = 8
    BUDGET_BYTES = 256 << 20  # at most this much poisoned at once beyond one copy of each size (8 copies of a 6 GiB
    # output was 48 GiB in the candidate's process)

    def __init__(self, device: torch.device):
        self.device = device
        self.sizes: list[int] = []

    def sizes_from(self, specs: list[dict]) -> None:
        """Remember the byte sizes of outputs described as {"shape", "dtype"} (and their total)."""
        sizes = [nbytes(spec["shape"], spec["dtype"]) for spec in specs]
        self.sizes = sorted(set(sizes + ([sum(sizes)] if len(sizes) > 1 else [])))

    def __call__(self) -> None:
        blocks = []
        for n in self.sizes:
            for _ in range(max(1, min(self.COPIES, self.BUDGET_BYTES // max(n, 1)))):
                blocks.append(torch.empty(n, dtype=torch.uint8, device=self.device).fill_(255))
        del blocks
