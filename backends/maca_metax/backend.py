"""MacaMetaxBackend: MACA C++ candidates on MetaX GPUs through the shared native cffi binding (mxcc, libmcruntime).

Discovery: MACA_PATH, MACA_HOME, /opt/maca, then the system search path. Without the SDK the probe says so
and how to fix it; nothing here needs MACA_PATH to be set.
"""

from __future__ import annotations

from ksdk_native.backend import NativeBackend, native_language
from ksdk_native.dialect import MACA


class MacaMetaxBackend(NativeBackend):
    """Candidates are MACA C++ kernels plus a launch description, compiled by mxcc and launched via cffi."""

    name = "maca_metax"
    language = native_language("maca", (".maca", ".cpp"))
    dialect = MACA
    extra = "maca"

    @classmethod
    def env_allowlist(cls) -> tuple[str, ...]:
        return ("MACA_*",)
