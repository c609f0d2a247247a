"""Optional extras: which `pip install "ksdk[EXTRA]"` provides a module, and the one line to show when it is missing."""

from __future__ import annotations

import importlib.util
from typing import Optional

from ksdk.errors import PluginError

EXTRAS = {"litellm": "llm", "triton": "triton", "fastapi": "service", "uvicorn": "service", "httpx": "service",
          "starlette": "service", "ray": "ray", "pyarrow": "parquet", "cffi": "cuda"}


def install_line(extra: str) -> str:
    """`pip install "ksdk[EXTRA]"`, and the form for a checkout."""
    return f'pip install "ksdk[{extra}]" (from a checkout: pip install -e ".[{extra}]")'


def missing_line(module: Optional[str]) -> Optional[str]:
    """The fix for a ModuleNotFoundError of `module` when an extra provides it, else None."""
    top = (module or "").split(".")[0]
    extra = EXTRAS.get(top)
    return f"{top} is not installed: {install_line(extra)}" if extra else None


def require(*modules: str, extra: str, what: str) -> None:
    """Raise PluginError naming the install line unless every module can be imported (found, not imported)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise PluginError(f"{what} needs {' and '.join(missing)}, not installed here: {install_line(extra)}")
