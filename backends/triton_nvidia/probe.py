"""Cheap availability probe for Triton on NVIDIA: packages present? NVIDIA driver and GPUs? No torch import."""

from __future__ import annotations

import ctypes
import importlib.util

from ksdk.models import Availability, DeviceInfo

NAME = "triton_nvidia"
INTERPRETER = "Triton interpreter on the CPU: load, compile/trace and correctness run; timing is skipped"


def cuda_devices() -> tuple[list[DeviceInfo], str]:
    """GPUs seen by the NVIDIA driver (libcuda), or ([], why not). Uses the driver API, not torch."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return [], "no NVIDIA driver: libcuda.so.1 not found"
    rc = cuda.cuInit(0)
    if rc != 0:
        return [], f"the NVIDIA driver failed to initialise (cuInit returned {rc})"
    count = ctypes.c_int(0)
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return [], "the NVIDIA driver reports no GPU"
    version = ctypes.c_int(0)
    cuda.cuDriverGetVersion(ctypes.byref(version))
    devices = []
    for i in range(count.value):
        dev = ctypes.c_int(0)
        cuda.cuDeviceGet(ctypes.byref(dev), i)
        name = ctypes.create_string_buffer(256)
        cuda.cuDeviceGetName(name, 256, dev)
        devices.append(DeviceInfo(index=i, name=name.value.decode(), kind="gpu",
                                  driver=f"cuda {version.value // 1000}.{(version.value % 1000) // 10}"))
    return devices, ""


def probe() -> Availability:
    """Available with GPUs; otherwise unavailable, with the interpreter as fallback when torch and triton exist."""
    missing = [m for m in ("torch", "triton", "numpy") if importlib.util.find_spec(m) is None]
    if missing:
        return Availability(
            name=NAME, available=False,
            reason=f"Python package(s) not installed: {', '.join(missing)}",
            fix='pip install "ksdk[triton]" (from a checkout: pip install ".[triton]"); '
                'pin torch for a CPU or CUDA build',
        )
    devices, why = cuda_devices()
    if not devices:
        return Availability(
            name=NAME, available=False, reason=why,
            fix="run on a machine with an NVIDIA GPU and driver; on this machine candidates are checked in "
                "Triton's interpreter (correctness only, no speedup)",
            fallback=INTERPRETER,
        )
    return Availability(name=NAME, available=True, devices=devices)
