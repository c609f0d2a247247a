"""MacaMetaxBackend: the plugin class registered under `ksdk.backends` as `maca_metax`."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ksdk.interfaces.backend import Backend, EvalContext
from ksdk.models import Availability, Candidate, EvalResult, Task

FIX = ("install MetaX's MACA SDK (mxcc and libmcruntime.so) and set MACA_PATH to it, e.g. "
       "export MACA_PATH=/opt/maca; then pip install \"ksdk[maca]\"")


def find_maca() -> tuple[Path | None, str]:
    """The MACA install: MACA_PATH, MACA_HOME, /opt/maca; (None, what was searched) when absent."""
    searched = []
    for var in ("MACA_PATH", "MACA_HOME"):
        val = os.environ.get(var)
        if val:
            searched.append(f"{var}={val}")
            if (Path(val) / "lib" / "libmcruntime.so").exists():
                return Path(val), ""
    searched.append("/opt/maca")
    if Path("/opt/maca/lib/libmcruntime.so").exists():
        return Path("/opt/maca"), ""
    return None, "MACA toolchain not found (libmcruntime.so absent; searched " + ", ".join(searched) + ")"


class MacaMetaxBackend(Backend):
    """Candidates are MACA C++ kernels plus a launch description, compiled by mxcc, launched via cffi."""

    name = "maca_metax"
    language = "maca"
    version = "0.1.0"

    @classmethod
    def probe(cls) -> Availability:
        if importlib.util.find_spec("cffi") is None:
            return Availability(name=cls.name, available=False, reason="Python package cffi not installed",
                                fix='pip install "ksdk[maca]" (from a checkout: pip install ".[maca]")')
        root, why = find_maca()
        if root is None:
            return Availability(name=cls.name, available=False, reason=why, fix=FIX)
        return Availability(name=cls.name, available=False, reason="device probe not implemented", fix=FIX)

    def evaluate(self, task: Task, candidate: Candidate, ctx: EvalContext) -> EvalResult:
        raise NotImplementedError
