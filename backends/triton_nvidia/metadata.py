"""Compiler metadata of the kernels a candidate launched: registers, spills, shared memory, warps, stages."""

from __future__ import annotations

from typing import Any, Iterable

from ksdk.models import KernelMeta

MAX_KERNELS = 8


def _jit_function(obj: Any) -> Any:
    """The JITFunction under autotune/heuristics wrappers (they keep it in `.fn`)."""
    seen = 0
    while obj is not None and seen < 8:
        if type(obj).__name__ == "JITFunction" or hasattr(obj, "device_caches"):
            return obj
        obj = getattr(obj, "fn", None)
        seen += 1
    return None


def _compiled(jit_fn: Any) -> Iterable[Any]:
    for cache in getattr(jit_fn, "device_caches", {}).values():
        kernels = cache[0] if isinstance(cache, tuple) else cache
        if isinstance(kernels, dict):
            yield from kernels.values()


def _int(value: Any):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def from_compiled(functions: Iterable[Any]) -> list[KernelMeta]:
    """KernelMeta for every compiled variant of the given JIT functions (GPU mode)."""
    metas: list[KernelMeta] = []
    for fn in functions:
        jit_fn = _jit_function(fn)
        if jit_fn is None:
            continue
        for kernel in _compiled(jit_fn):
            try:
                kernel._init_handles()  # n_regs / n_spills are known once the binary is loaded
            except Exception:
                pass
            md = getattr(kernel, "metadata", None)
            metas.append(KernelMeta(
                name=str(getattr(kernel, "name", None) or getattr(md, "name", "kernel")),
                registers=_int(getattr(kernel, "n_regs", None)),
                spills=_int(getattr(kernel, "n_spills", None)),
                shared_mem_bytes=_int(getattr(md, "shared", None)),
                num_warps=_int(getattr(md, "num_warps", None)),
                num_stages=_int(getattr(md, "num_stages", None)),
                extra={k: v for k, v in (("max_threads", _int(getattr(kernel, "n_max_threads", None))),
                                         ("num_ctas", _int(getattr(md, "num_ctas", None)))) if v is not None},
            ))
            if len(metas) >= MAX_KERNELS:
                return metas
    return metas


def from_launches(launches: Iterable[Any]) -> list[KernelMeta]:
    """Interpreter mode: no compiled binary exists, so only names and launch options are known."""
    metas: dict[str, KernelMeta] = {}
    for launch in launches:
        if launch.name not in metas and len(metas) < MAX_KERNELS:
            metas[launch.name] = KernelMeta(
                name=launch.name, num_warps=launch.options.get("num_warps"),
                num_stages=launch.options.get("num_stages"),
                extra={"note": "interpreted: no compiler metadata (registers, spills, shared memory) on the CPU"},
            )
    return list(metas.values())
