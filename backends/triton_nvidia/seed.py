"""Triton's seed cache (Backend.seed_cache): C extensions Triton would otherwise build with the C compiler in every
candidate's fresh process, built once per judge instead, then copied into each candidate's private cache.

- The judge runs this module (`python -m ksdk_triton_nvidia.seed`) with TRITON_CACHE_DIR set: first with no
  arguments, to compile and launch one fixed kernel (Triton's driver utilities and that signature's launcher);
  then with `--launchers JSON`, to build the launchers of signatures candidates' processes used (Triton versions
  that generate a launcher per signature, such as 3.6; on others there is nothing to build).
- A candidate's process records those signatures (`record`, `drain`); they are untrusted claims, and the judge
  keeps only lists of Triton's own type names (`valid_signature`). A launcher's C source is Triton's, generated
  from the types alone, so a candidate chooses at most which of Triton's launchers exist.
"""

from __future__ import annotations

import json
import os
import re
import sys

MAX_ARGS = 64
_TYPE = re.compile(r"(\*k?)?(i1|i8|i16|i32|i64|u1|u8|u16|u32|u64|fp8e4nv|fp8e5|fp8e4b15|fp8e4b8|fp8e5b16|fp16|bf16|"
                   r"fp32|f32|fp64)|constexpr")
_SEEN: list[list[str]] = []
_NEW: list[list[str]] = []


def valid_signature(sig) -> bool:
    """A list of at most MAX_ARGS of Triton's scalar, pointer or constexpr type names, and nothing else."""
    return (isinstance(sig, list) and 0 < len(sig) <= MAX_ARGS
            and all(isinstance(t, str) and _TYPE.fullmatch(t) for t in sig))


def record() -> None:
    """In a candidate's process, before any candidate code: note the signature of every launcher Triton makes."""
    try:
        from triton.backends.nvidia import driver
    except ImportError:
        return
    cls = getattr(driver, "CudaLauncher", None)
    if cls is None or not hasattr(driver, "make_launcher") or getattr(cls, "_ksdk_recorded", False):
        return
    init = cls.__init__

    def recording_init(self, src, metadata, *args, **kwargs):
        sig = list(getattr(src, "signature", {}).values())
        if getattr(metadata, "tensordesc_meta", None) is None and valid_signature(sig) and sig not in _SEEN:
            _SEEN.append(sig)
            _NEW.append(sig)
        init(self, src, metadata, *args, **kwargs)

    cls.__init__ = recording_init
    cls._ksdk_recorded = True


def drain() -> list[list[str]]:
    """The signatures recorded since the last drain."""
    out = list(_NEW)
    _NEW.clear()
    return out


def build_launchers(signatures: list[list[str]]) -> int:
    """Build the launchers of these (valid) signatures into TRITON_CACHE_DIR; how many this Triton builds."""
    from triton.backends.nvidia import driver
    from triton.runtime.build import compile_module_from_src

    if not hasattr(driver, "make_launcher"):
        return 0
    built = 0
    for sig in signatures:
        if not valid_signature(sig):
            continue
        src = driver.make_launcher({}, dict(enumerate(sig)), None)
        compile_module_from_src(src=src, name="__triton_launcher", library_dirs=driver.library_dirs(),
                                include_dirs=driver.include_dirs, libraries=driver.libraries)
        built += 1
    return built


def warm_driver() -> None:
    """Compile and launch one fixed kernel: Triton builds its driver utilities and this signature's launcher."""
    import torch
    import triton
    import triton.language as tl

    @triton.jit
    def _copy(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)

    x = torch.arange(1000, device="cuda", dtype=torch.float32)
    y = torch.empty_like(x)
    _copy[(triton.cdiv(x.numel(), 256),)](x, y, x.numel(), BLOCK=256)
    torch.cuda.synchronize()
    if not torch.equal(x, y):
        raise RuntimeError("the fixed kernel computed a wrong copy")


def main(argv: list[str]) -> int:
    if not os.environ.get("TRITON_CACHE_DIR"):
        print("seed: set TRITON_CACHE_DIR to the folder to fill", file=sys.stderr)
        return 2
    os.environ["TRITON_INTERPRET"] = "0"
    if argv[:1] == ["--launchers"]:
        print(f"seed: {build_launchers(json.loads(argv[1]))} launchers built")
    else:
        warm_driver()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
