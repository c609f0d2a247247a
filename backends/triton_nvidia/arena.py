"""Judge-visible memory as a PyTorch memory pool: a bump allocator over the arena the judge shares for a timed batch
(torch.cuda.MemPool with a custom allocator whose functions are ctypes callbacks). Allocations made while the pool
is in use (a forward's outputs and temporaries, eagerly or during graph capture) land in memory the judge reads, so
timed calls write their outputs where the judge checks them, with no copy. A batch's tensors are freed into the
pool's cache and reused by the next batch; blocks the pool gives back (torch.cuda.empty_cache) are free arena space
again (`Ranges`), so repeated batches never run the arena short."""

from __future__ import annotations

import bisect
import ctypes
from typing import Optional

ALIGN = 512
_CU: Optional[ctypes.CDLL] = None


def _driver() -> ctypes.CDLL:
    global _CU
    if _CU is None:
        _CU = ctypes.CDLL("libcuda.so.1")
    return _CU
_ALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p)
_FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p)


class Ranges:
    """First-fit allocation of byte ranges in [0, size), ALIGN-aligned, with freed ranges merged with their
    neighbours; no device needed."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.free: list[list[int]] = [[0, self.size]] if self.size > 0 else []  # [start, end), sorted, disjoint
        self.taken: dict[int, int] = {}  # start -> end

    def take(self, size: int) -> Optional[int]:
        """The start of `size` free bytes (marked taken), or None when no free range holds them."""
        need = -(-max(int(size), 1) // ALIGN) * ALIGN
        for i, (lo, hi) in enumerate(self.free):
            start = -(-lo // ALIGN) * ALIGN
            if start + need <= hi:
                self.taken[start] = start + need
                pieces = [[lo, start]] if start > lo else []
                pieces += [[start + need, hi]] if start + need < hi else []
                self.free[i:i + 1] = pieces
                return start
        return None

    def give(self, start: int) -> None:
        """Free the range taken at `start` (unknown starts are ignored)."""
        end = self.taken.pop(int(start), None)
        if end is None:
            return
        i = bisect.bisect(self.free, [start, end])
        self.free.insert(i, [start, end])
        if i + 1 < len(self.free) and self.free[i + 1][0] == end:  # merge with the next, then the previous
            self.free[i][1] = self.free.pop(i + 1)[1]
        if i > 0 and self.free[i - 1][1] == start:
            self.free[i - 1][1] = self.free.pop(i)[1]


class Arena:
    """A MemPool handing out [view.data_ptr(), + view.numel()) of a uint8 CUDA tensor; `pool` is the MemPool."""

    def __init__(self, view) -> None:
        import torch

        self.view = view
        self.base, self.size = int(view.data_ptr()), int(view.numel())
        self.ranges = Ranges(self.size)
        self.overflow: dict[int, int] = {}  # blocks past the arena's end: address -> bytes
        self._alloc_cb, self._free_cb = _ALLOC(self._alloc), _FREE(self._free)  # kept alive with the pool
        fn = ctypes.cast(self._alloc_cb, ctypes.c_void_p).value
        free = ctypes.cast(self._free_cb, ctypes.c_void_p).value
        self.allocator = torch._C._cuda_customAllocator(fn, free)
        self.pool = torch.cuda.MemPool(self.allocator)

    def _alloc(self, size: int, device: int, stream) -> Optional[int]:
        start = self.ranges.take(int(size))
        if start is not None:
            return self.base + start
        # Past the arena's end (a forward's workspaces, say): device memory of the candidate's own, so that libraries
        # pick the algorithms they would anyway; an output that lands there is copied into the arena by the Runner.
        ptr = ctypes.c_ulonglong()
        if _driver().cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(int(size))) != 0:
            return None  # NULL: PyTorch raises OutOfMemoryError inside the forward
        self.overflow[int(ptr.value)] = int(size)
        return int(ptr.value)

    def _free(self, ptr, size, device, stream) -> None:
        """Arena blocks become free arena space; blocks past its end go back to the device."""
        if self.base <= int(ptr or 0) < self.base + self.size:
            self.ranges.give(int(ptr) - self.base)
        elif int(ptr or 0) in self.overflow:
            del self.overflow[int(ptr)]
            _driver().cuMemFree_v2(ctypes.c_ulonglong(int(ptr)))

    def offset(self, t) -> Optional[int]:
        """The byte offset of tensor `t`'s data in the arena, or None when it lies (even partly) outside."""
        ptr, n = int(t.data_ptr()), int(t.numel()) * t.element_size()
        if t.is_contiguous() and self.base <= ptr and ptr + n <= self.base + self.size:
            return ptr - self.base
        return None
