"""CudaNvidiaBackend: CUDA C++ candidates on NVIDIA GPUs through the shared native cffi binding
(nvcc, libcudart, libcuda)."""

from __future__ import annotations

from ksdk_native.backend import NativeBackend, native_language
from ksdk_native.dialect import CUDA


class CudaNvidiaBackend(NativeBackend):
    """Candidates are CUDA C++ kernels plus a launch description, compiled to a cubin and launched via cffi."""

    name = "cuda_nvidia"
    language = native_language("cuda", (".cu", ".cpp"))
    dialect = CUDA
    extra = "cuda"
