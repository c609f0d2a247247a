"""Memory the judge shares with a candidate's process: regions the judge allocates (inputs it writes, outputs the
candidate writes), handed over as file descriptors. Host memory (a memfd) works everywhere; a backend may share
device memory instead (triton_nvidia: CUDA VMM). The judge never reads what it compares twice: it copies a
chunk out, then checks the copy.
"""

from __future__ import annotations

import math
import mmap
import os
from abc import ABC, abstractmethod
from typing import Any, Optional

import numpy as np

from ksdk.models import Model

# torch dtype name -> numpy dtype name (bfloat16 has no numpy type: its raw bits are shown as uint16)
NUMPY_DTYPES = {"float64": "float64", "float32": "float32", "float16": "float16", "bfloat16": "uint16",
                "int64": "int64", "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8",
                "bool": "bool", "complex64": "complex64", "complex128": "complex128"}
ALIGN = 256


class Slot(Model):
    """Where one tensor lives in a shared region: byte offset, shape and dtype name (torch's, e.g. 'float32')."""

    region: str
    offset: int
    shape: list[int]
    dtype: str

    @property
    def nbytes(self) -> int:
        return nbytes(self.shape, self.dtype)


def itemsize(dtype: str) -> int:
    """Bytes per element of a torch dtype name."""
    return np.dtype(NUMPY_DTYPES[dtype]).itemsize


def nbytes(shape: list[int], dtype: str) -> int:
    """Bytes of a tensor of this shape and torch dtype name."""
    return math.prod(int(d) for d in shape) * itemsize(dtype)


class Layout:
    """Packs tensors into one region: each at an aligned offset."""

    def __init__(self, region: str):
        self.region, self.size = region, 0

    def add(self, shape: list[int], dtype: str) -> Slot:
        slot = Slot(region=self.region, offset=self.size, shape=[int(s) for s in shape], dtype=dtype)
        self.size += -(-max(slot.nbytes, 1) // ALIGN) * ALIGN
        return slot


class Region(ABC):
    """One shared allocation as a process sees it."""

    name: str
    size: int

    @abstractmethod
    def tensor(self, slot: Slot) -> Any:
        """A torch tensor viewing `slot` (no copy)."""

    def view(self, slot: Slot) -> Any:
        """The Runner's view of `slot` (torch tensor unless the memory says numpy)."""
        return self.tensor(slot)

    @abstractmethod
    def export_fd(self) -> int:
        """A new file descriptor for this memory, to send to the other process (the caller closes it)."""

    @abstractmethod
    def close(self) -> None:
        """Unmap it here."""


class SharedMemory(ABC):
    """How the judge and a Runner share memory; `kind` names it to the Runner's side."""

    kind: str = ""

    @abstractmethod
    def allocate(self, name: str, size: int) -> Region:
        """New shared memory of `size` bytes (judge side)."""

    @abstractmethod
    def attach(self, name: str, fd: int, size: int) -> Region:
        """Map memory the judge sent as `fd` (candidate side)."""

    def free_bytes(self) -> Optional[int]:
        """How much can still be allocated, where known (device memory)."""
        return None


class HostRegion(Region):
    """A memfd mapped into this process."""

    def __init__(self, name: str, fd: int, size: int, numpy_views: bool):
        self.name, self.size, self._fd, self._numpy = name, size, fd, numpy_views
        # Populated now (page tables filled for the whole region): a first touch inside a timed call would charge
        # the candidate for page faults the judge's clock sees.
        self._mm = mmap.mmap(fd, max(size, 1), flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))

    def tensor(self, slot: Slot):
        import torch

        dt = getattr(torch, slot.dtype)
        n = slot.nbytes
        if n == 0:
            return torch.empty(slot.shape, dtype=dt)
        raw = torch.frombuffer(self._mm, dtype=torch.uint8, count=n, offset=slot.offset)
        return raw.view(dt).view(slot.shape)

    def array(self, slot: Slot):
        """A numpy array viewing `slot` (bfloat16 as its uint16 bits)."""
        dt = np.dtype(NUMPY_DTYPES[slot.dtype])
        count = slot.nbytes // dt.itemsize
        return np.frombuffer(self._mm, dtype=dt, count=count, offset=slot.offset).reshape(slot.shape)

    def view(self, slot: Slot):
        return self.array(slot) if self._numpy else self.tensor(slot)

    def export_fd(self) -> int:
        return os.dup(self._fd)

    def close(self) -> None:
        try:
            self._mm.close()
        except BufferError:  # a view still exists: the mapping goes when the last view does
            pass
        try:
            os.close(self._fd)
        except OSError:
            pass


class HostMemory(SharedMemory):
    """Host memory (memfd) shared by file descriptor; the Runner sees numpy arrays or torch CPU tensors."""

    kind = "host"

    def __init__(self, view: str = "numpy"):
        self.numpy_views = view == "numpy"

    def allocate(self, name: str, size: int) -> Region:
        fd = os.memfd_create(f"ksdk-{name}", os.MFD_CLOEXEC)
        os.ftruncate(fd, max(size, 1))
        return HostRegion(name, fd, size, self.numpy_views)

    def attach(self, name: str, fd: int, size: int) -> Region:
        return HostRegion(name, fd, size, self.numpy_views)


def arg_views(region: Region, args: list[dict], tensors: bool = False) -> list:
    """Input arguments ({"slot": ...} or {"value": ...}) as a callee takes them: their slots in `region` as the
    Runner's views (torch tensors with `tensors`), plain values as they are."""
    see = region.tensor if tensors else region.view
    return [see(Slot.model_validate(a["slot"])) if "slot" in a else a.get("value") for a in args]
