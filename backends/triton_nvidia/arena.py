"""Judge-visible memory as a PyTorch memory pool: a bump allocator over the arena the judge shares for a timed batch
(torch.cuda.MemPool with a custom allocator whose functions are ctypes callbacks). Allocations made while the pool
is in use (a forward's outputs and temporaries, eagerly or during graph capture) land in memory the judge reads, so
timed calls write their outputs where the judge checks them, with no copy. Memory is never given back: a batch's
tensors are freed into the pool's cache and reused by the next batch."""

from __future__ import annotations

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


class Arena:
    """A MemPool handing out [view.data_ptr(), + view.numel()) of a uint8 CUDA tensor; `pool` is the MemPool."""

    def __init__(self, view) -> None:
        import torch

        self.view = view
        self.base, self.size, self.used = int(view.data_ptr()), int(view.numel()), 0
        self.overflow: dict[int, int] = {}  # blocks past the arena's end: address -> bytes
        self._alloc_cb, self._free_cb = _ALLOC(self._alloc), _FREE(self._free)  # kept alive with the pool
        fn = ctypes.cast(self._alloc_cb, ctypes.c_void_p).value
        free = ctypes.cast(self._free_cb, ctypes.c_void_p).value
        self.allocator = torch._C._cuda_customAllocator(fn, free)
        self.pool = torch.cuda.MemPool(self.allocator)

    def _alloc(self, size: int, device: int, stream) -> Optional[int]:
        start = -(-self.used // ALIGN) * ALIGN
        if start + size <= self.size:
            self.used = start + int(size)
            return self.base + start
        # Past the arena's end (a forward's workspaces, say): device memory of the candidate's own, so that libraries
        # pick the algorithms they would anyway; an output that lands there is copied into the arena by the Runner.
        ptr = ctypes.c_ulonglong()
        if _driver().cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(int(size))) != 0:
            return None  # NULL: PyTorch raises OutOfMemoryError inside the forward
        self.overflow[int(ptr.value)] = int(size)
        return int(ptr.value)

    def _free(self, ptr, size, device, stream) -> None:
        """Arena blocks stay with the pool (its cache reuses them); blocks past its end go back to the device."""
        if int(ptr or 0) in self.overflow:
            del self.overflow[int(ptr)]
            _driver().cuMemFree_v2(ctypes.c_ulonglong(int(ptr)))

    def offset(self, t) -> Optional[int]:
        """The byte offset of tensor `t`'s data in the arena, or None when it lies (even partly) outside."""
        ptr, n = int(t.data_ptr()), int(t.numel()) * t.element_size()
        if t.is_contiguous() and self.base <= ptr and ptr + n <= self.base + self.size:
            return ptr - self.base
        return None
