"""Device memory shared between the judge and a candidate's process through a file descriptor (CUDA's virtual
memory management API, POSIX fd handles): works across the sandbox's PID, IPC and user namespaces, where CUDA's
legacy IPC handles are refused. The fd travels over a Unix socket (SCM_RIGHTS); nothing else is shared.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import Optional

CU_MEM_ALLOCATION_TYPE_PINNED = 1
CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR = 1
CU_MEM_LOCATION_TYPE_DEVICE = 1
CU_MEM_ACCESS_FLAGS_PROT_READWRITE = 3
CU_MEM_ALLOC_GRANULARITY_RECOMMENDED = 1


class _Location(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("id", ctypes.c_int)]


class _AllocFlags(ctypes.Structure):
    _fields_ = [("compressionType", ctypes.c_ubyte), ("gpuDirectRDMACapable", ctypes.c_ubyte),
                ("usage", ctypes.c_ushort), ("reserved", ctypes.c_ubyte * 4)]


class _Prop(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("requestedHandleTypes", ctypes.c_int), ("location", _Location),
                ("win32HandleMetaData", ctypes.c_void_p), ("allocFlags", _AllocFlags)]


class _AccessDesc(ctypes.Structure):
    _fields_ = [("location", _Location), ("flags", ctypes.c_int)]


class DriverError(RuntimeError):
    """A CUDA driver call failed (its name and CUresult in the message)."""


_LIB: Optional[ctypes.CDLL] = None


def _cu() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        _LIB = ctypes.CDLL("libcuda.so.1")
    return _LIB


def _check(name: str, code: int) -> None:
    if code != 0:
        msg = ctypes.c_char_p()
        _cu().cuGetErrorString(code, ctypes.byref(msg))
        raise DriverError(f"{name} failed: CUresult {code} ({(msg.value or b'?').decode()})")


def _prop(device: int) -> _Prop:
    p = _Prop()
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED
    p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
    p.location = _Location(CU_MEM_LOCATION_TYPE_DEVICE, device)
    return p


def _context(device: int) -> None:
    """Make the device's primary context (the one PyTorch uses) current on this thread."""
    cu = _cu()
    _check("cuInit", cu.cuInit(0))
    dev = ctypes.c_int()
    _check("cuDeviceGet", cu.cuDeviceGet(ctypes.byref(dev), device))
    ctx = ctypes.c_void_p()
    _check("cuDevicePrimaryCtxRetain", cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev))
    _check("cuCtxSetCurrent", cu.cuCtxSetCurrent(ctx))


def granularity(device: int = 0) -> int:
    """The allocation granularity (bytes) of shareable device memory."""
    g = ctypes.c_size_t()
    _check("cuMemGetAllocationGranularity",
           _cu().cuMemGetAllocationGranularity(ctypes.byref(g), ctypes.byref(_prop(device)),
                                               CU_MEM_ALLOC_GRANULARITY_RECOMMENDED))
    return int(g.value)


@dataclass
class Shared:
    """One mapping of shareable device memory in this process: its address, size and handle."""

    ptr: int
    size: int
    handle: int
    device: int

    def export_fd(self) -> int:
        """A new file descriptor standing for this memory (for SCM_RIGHTS); the caller closes it."""
        fd = ctypes.c_int()
        _check("cuMemExportToShareableHandle",
               _cu().cuMemExportToShareableHandle(ctypes.byref(fd), ctypes.c_ulonglong(self.handle),
                                                  CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, ctypes.c_ulonglong(0)))
        return int(fd.value)

    def close(self) -> None:
        """Unmap and release this process's reference (the memory lives while another process maps it)."""
        cu = _cu()
        if self.ptr:
            cu.cuMemUnmap(ctypes.c_ulonglong(self.ptr), ctypes.c_size_t(self.size))
            cu.cuMemAddressFree(ctypes.c_ulonglong(self.ptr), ctypes.c_size_t(self.size))
            cu.cuMemRelease(ctypes.c_ulonglong(self.handle))
            self.ptr = 0


def _map(handle: int, size: int, device: int, align: int = 0) -> int:
    cu = _cu()
    ptr = ctypes.c_ulonglong()
    _check("cuMemAddressReserve", cu.cuMemAddressReserve(ctypes.byref(ptr), ctypes.c_size_t(size),
                                                         ctypes.c_size_t(align), ctypes.c_ulonglong(0),
                                                         ctypes.c_ulonglong(0)))
    try:
        _check("cuMemMap", cu.cuMemMap(ptr, ctypes.c_size_t(size), ctypes.c_size_t(0),
                                       ctypes.c_ulonglong(handle), ctypes.c_ulonglong(0)))
        desc = _AccessDesc(_Location(CU_MEM_LOCATION_TYPE_DEVICE, device), CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
        _check("cuMemSetAccess", cu.cuMemSetAccess(ptr, ctypes.c_size_t(size), ctypes.byref(desc),
                                                   ctypes.c_size_t(1)))
    except DriverError:
        cu.cuMemUnmap(ptr, ctypes.c_size_t(size))
        cu.cuMemAddressFree(ptr, ctypes.c_size_t(size))
        raise
    return int(ptr.value)


def _shared(handle: ctypes.c_ulonglong, size: int, device: int, align: int = 0) -> Shared:
    """Map a created or imported allocation here (its address aligned to `align` bytes, 0: the granularity);
    released again if it cannot be mapped."""
    try:
        ptr = _map(handle.value, size, device, align)
    except DriverError:
        _cu().cuMemRelease(handle)
        raise
    return Shared(ptr, size, int(handle.value), device)


def allocate(size: int, device: int = 0, align: int = 0) -> Shared:
    """New shareable device memory of at least `size` bytes (rounded up to the granularity), mapped here at an
    address aligned to `align` bytes (0: the granularity)."""
    _context(device)
    g = granularity(device)
    size = max(g, -(-size // g) * g)
    handle = ctypes.c_ulonglong()
    _check("cuMemCreate", _cu().cuMemCreate(ctypes.byref(handle), ctypes.c_size_t(size),
                                            ctypes.byref(_prop(device)), ctypes.c_ulonglong(0)))
    return _shared(handle, size, device, align)


def import_fd(fd: int, size: int, device: int = 0) -> Shared:
    """Map memory another process exported as `fd` (which stays open; close it when done)."""
    _context(device)
    handle = ctypes.c_ulonglong()
    _check("cuMemImportFromShareableHandle",
           _cu().cuMemImportFromShareableHandle(ctypes.byref(handle), ctypes.c_void_p(fd),
                                                CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR))
    return _shared(handle, size, device)


class _CudaArray:
    """A raw device pointer seen as an array (__cuda_array_interface__), for torch.as_tensor."""

    def __init__(self, ptr: int, shape: tuple, typestr: str, owner):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (ptr, False), "version": 3,
                                         "strides": None, "stream": None}
        self._owner = owner


def tensor(shared: Shared, offset: int, shape: tuple, dtype) -> "object":
    """A torch tensor over `shared` memory at `offset` (no copy; it keeps `shared` alive)."""
    import torch

    elem = torch.empty((), dtype=dtype).element_size()
    u8 = torch.as_tensor(_CudaArray(shared.ptr + offset, (max(1, math.prod(shape)) * elem,), "|u1", shared),
                         device=f"cuda:{torch.cuda.current_device()}")
    return u8[: math.prod(shape) * elem].view(dtype).view(shape)


class CudaRegion:
    """A shared device allocation, seen by the judge and the Runner alike as torch tensors."""

    def __init__(self, name: str, shared: Shared):
        self.name, self.size, self.shared = name, shared.size, shared

    def tensor(self, slot):
        import torch

        return tensor(self.shared, slot.offset, tuple(slot.shape), getattr(torch, slot.dtype))

    def view(self, slot):
        return self.tensor(slot)

    def export_fd(self) -> int:
        return self.shared.export_fd()

    def close(self) -> None:
        self.shared.close()


class CudaMemory:
    """ksdk.evaluation.shared.SharedMemory over CUDA device memory (VMM, POSIX fd handles)."""

    kind = "cuda"

    def __init__(self, device: int = 0):
        self.device = device

    def allocate(self, name: str, size: int) -> CudaRegion:
        import torch

        torch.cuda.init()
        return CudaRegion(name, allocate(max(size, 1), self.device))

    def attach(self, name: str, fd: int, size: int) -> CudaRegion:
        import os

        import torch

        torch.cuda.init()
        try:
            return CudaRegion(name, import_fd(fd, size, self.device))
        finally:
            os.close(fd)

    def free_bytes(self) -> Optional[int]:
        import torch

        return int(torch.cuda.mem_get_info()[0])
