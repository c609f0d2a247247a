"""The environment a worker process sees: an allowlist, so no API key or token reaches candidate code."""

from __future__ import annotations

import os
import re
from typing import Iterable, Mapping

# Exact names and prefixes (ending in '*') that workers may inherit.
BASE_ALLOWLIST = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_*", "TZ", "TMPDIR", "TEMP", "TMP", "SHELL", "TERM",
    "PYTHONPATH", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "LIBRARY_PATH",
    "CC", "CXX", "CFLAGS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_*",
    "CUDA_HOME", "CUDA_PATH", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "CUDA_LAUNCH_BLOCKING",
    "NVIDIA_*", "TRITON_*", "TORCHINDUCTOR_*", "TORCH_HOME", "TORCH_CUDA_ARCH_LIST",
    "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS",
    "KSDK_*",
)
# Never passed, whatever an allowlist says: names that look like credentials.
SECRET = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION)", re.I)


def _allowed(name: str, allow: Iterable[str]) -> bool:
    for pat in allow:
        if pat.endswith("*") and name.startswith(pat[:-1]):
            return True
        if name == pat:
            return True
    return False


def scrubbed_env(extra_allow: Iterable[str] = (), overrides: Mapping[str, str] | None = None,
                 source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allowlisted subset of `source` (default os.environ), minus credential-like names, plus overrides."""
    source = os.environ if source is None else source
    allow = tuple(BASE_ALLOWLIST) + tuple(extra_allow)
    env = {k: v for k, v in source.items() if _allowed(k, allow) and not SECRET.search(k)}
    env.update(overrides or {})
    return env
