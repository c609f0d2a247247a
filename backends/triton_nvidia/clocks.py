"""GPU clocks, temperature and throttle reasons read through NVML (libnvidia-ml, ctypes): recorded around every
performance stage, so a timing taken at unusual clocks can be told apart. Never raises; {} where NVML is absent."""

from __future__ import annotations

import ctypes
from typing import Any, Optional

_NVML: Optional[Any] = None
_CLOCK_TYPES = {"sm_mhz": 1, "mem_mhz": 2}  # nvmlClockType_t: NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2


def _lib():
    global _NVML
    if _NVML is None:
        try:
            lib = ctypes.CDLL("libnvidia-ml.so.1")
            _NVML = lib if lib.nvmlInit_v2() == 0 else False
        except (OSError, AttributeError):
            _NVML = False
    return _NVML or None


def handle(uuid: str):
    """NVML handle of the GPU with this UUID (as torch reports it, with or without the 'GPU-' prefix), or None."""
    lib = _lib()
    if lib is None or not uuid:
        return None
    h = ctypes.c_void_p()
    key = uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"
    return h if lib.nvmlDeviceGetHandleByUUID(key.encode(), ctypes.byref(h)) == 0 else None


def read(h) -> dict[str, int]:
    """SM and memory clocks (MHz), temperature (C), power (W) and the active clock-throttle reasons (bitmask)."""
    lib = _lib()
    if lib is None or h is None:
        return {}
    out: dict[str, int] = {}
    v = ctypes.c_uint()
    for key, kind in _CLOCK_TYPES.items():
        if lib.nvmlDeviceGetClockInfo(h, kind, ctypes.byref(v)) == 0:
            out[key] = v.value
    if lib.nvmlDeviceGetTemperature(h, 0, ctypes.byref(v)) == 0:
        out["temp_c"] = v.value
    if lib.nvmlDeviceGetPowerUsage(h, ctypes.byref(v)) == 0:
        out["power_w"] = round(v.value / 1000)
    reasons = ctypes.c_ulonglong()
    if lib.nvmlDeviceGetCurrentClocksThrottleReasons(h, ctypes.byref(reasons)) == 0:
        out["throttle_reasons"] = reasons.value
    return out


class _MemoryInfo(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


def memory_used(h) -> Optional[int]:
    """Bytes in use on the GPU by every process (its contexts included), or None where NVML cannot say."""
    lib = _lib()
    if lib is None or h is None:
        return None
    info = _MemoryInfo()
    return int(info.used) if lib.nvmlDeviceGetMemoryInfo(h, ctypes.byref(info)) == 0 else None


class _ProcessInfo(ctypes.Structure):  # nvmlProcessInfo_v2_t
    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong), ("gpuInstanceId", ctypes.c_uint),
                ("computeInstanceId", ctypes.c_uint)]


def memory_by_process(h) -> Optional[dict[int, int]]:
    """Bytes each process with a compute context on the GPU uses (pid as this process's namespace sees it), or None
    where NVML cannot say (a process whose figure NVML withholds is left out)."""
    lib = _lib()
    if lib is None or h is None:
        return None
    count = ctypes.c_uint(64)
    infos = (_ProcessInfo * 64)()
    try:
        fn = lib.nvmlDeviceGetComputeRunningProcesses_v2
    except AttributeError:
        return None
    if fn(h, ctypes.byref(count), infos) != 0:
        return None
    not_available = (1 << 64) - 1  # NVML_VALUE_NOT_AVAILABLE
    return {int(i.pid): int(i.usedGpuMemory) for i in infos[:count.value] if i.usedGpuMemory != not_available}
