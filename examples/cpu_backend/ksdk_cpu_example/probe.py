"""Cheap availability probe: cffi, numpy and torch installed? A C compiler on PATH? Which CPU? Imports nothing heavy."""

from __future__ import annotations

import importlib.util
import os
import shutil

from ksdk.models import Availability, DeviceInfo

NAME = "cpu_c"


def compiler() -> str | None:
    """Absolute path of the C compiler: $CC if set, else cc, else gcc; None when none is on PATH."""
    for cand in (os.environ.get("CC"), "cc", "gcc"):
        if cand:
            found = shutil.which(cand)
            if found:
                return found
    return None


def probe() -> Availability:
    """Available when the Python packages and a C compiler exist; the one device is this CPU."""
    missing = [m for m in ("cffi", "numpy", "torch") if importlib.util.find_spec(m) is None]
    if missing:
        return Availability(
            name=NAME, available=False,
            reason=f"Python package(s) not installed: {', '.join(missing)}",
            fix="pip install cffi numpy, and torch (CPU build: pip install torch --index-url "
                "https://download.pytorch.org/whl/cpu) for the KernelBench reference",
        )
    cc = compiler()
    if cc is None:
        return Availability(
            name=NAME, available=False,
            reason="no C compiler on PATH (looked for $CC, cc, gcc)",
            fix="install one (Debian/Ubuntu: apt-get install gcc; macOS: xcode-select --install) or set CC",
        )
    return Availability(
        name=NAME, available=True,
        devices=[DeviceInfo.host_cpu(0, runtime=os.path.basename(cc), extra={"logical_cpus": os.cpu_count() or 1})],
    )
