"""A native dialect as data (compiler, flags, libraries, function-name table, enums), and finding its files.

The binding, compiler driver and runner read only this data: CUDA and MACA differ here and nowhere else.
Values marked UNCONFIRMED come from third-party code, not from the vendor's headers (see
docs/backends/maca_metax.md); the code avoids depending on them wherever a confirmed call exists.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from ksdk.errors import KsdkError


class ToolchainNotFound(KsdkError):
    """A dialect's compiler or libraries are missing; `reason` says what, `fix` says how to get them."""

    def __init__(self, reason: str, fix: str):
        super().__init__(f"{reason}; fix: {fix}")
        self.reason, self.fix = reason, fix


@dataclass(frozen=True)
class LibrarySpec:
    """One shared library: file names to try, and whether to look under the toolkit root for them."""

    names: tuple[str, ...]
    root_dirs: tuple[str, ...] = ("lib64", "lib")  # relative to the toolkit root; () = never under the root
    extra_dirs: tuple[str, ...] = ()  # absolute directories tried after the root and before the system path
    why_missing: str = ""  # what a missing copy usually means (e.g. "no NVIDIA driver")


@dataclass(frozen=True, eq=False)
class Dialect:
    """Everything that differs between CUDA-like native toolchains."""

    name: str  # candidate language, e.g. "cuda" or "maca"
    vendor: str
    root_env: tuple[str, ...]  # environment variables naming the toolkit root, in order
    default_roots: tuple[str, ...]
    compiler: str  # the compiler's file name, also searched on PATH
    compiler_relpaths: tuple[str, ...]  # where the compiler sits under the root
    compile_flags: tuple[str, ...]  # device-only compilation to a loadable module image
    arch_flag: str  # formatted with {arch}
    default_arch: Optional[str]
    arch_env: str  # environment variable that overrides the target architecture
    source_suffix: str
    binary_format: str
    libraries: Mapping[str, LibrarySpec]
    functions: Mapping[str, tuple[str, str]]  # logical call -> (library key, exported symbol)
    error_strings: Mapping[str, tuple[str, str]]  # library key -> (symbol, "return" | "out")
    wave_size: int
    visible_devices_env: str
    install_fix: str
    success: int = 0
    memcpy_kinds: Optional[Mapping[str, int]] = None  # None: use the direction-specific copy calls instead
    func_attributes: Mapping[str, int] = field(default_factory=dict)
    func_attributes_confirmed: bool = True
    device_attributes: Mapping[str, int] = field(default_factory=dict)
    sticky_codes: frozenset[int] = frozenset()  # errors after which the context is unusable
    oom_codes: frozenset[int] = frozenset()
    notes: tuple[str, ...] = ()
    device_nodes: tuple[str, ...] = ()  # device files (globs) a sandboxed process needs to reach the GPU

    def has(self, call: str) -> bool:
        """True when the dialect maps logical call `call` to a symbol."""
        return call in self.functions

    @property
    def flags_env(self) -> str:
        """Environment variable that replaces `compile_flags` (shell syntax)."""
        return f"KSDK_{self.name.upper()}_COMPILE_FLAGS"

    def compile_command(self, compiler: str | Path, source: str, output: str, arch: Optional[str],
                        extra: tuple[str, ...] = (), environ: Optional[Mapping[str, str]] = None) -> list[str]:
        """The compiler's command line for a device-only build of `source` into `output`."""
        env = os.environ if environ is None else environ
        flags = shlex.split(env[self.flags_env]) if env.get(self.flags_env) else list(self.compile_flags)
        cmd = [str(compiler), *flags]
        if arch:
            cmd.append(self.arch_flag.format(arch=arch))
        cmd += [*extra, "-o", output, source]
        return cmd


# -- CUDA: runtime calls in libcudart, module load and launch in the driver library libcuda -------------
# Enum values below are from NVIDIA's public headers (driver_types.h, cuda.h), stable across CUDA 11-13.
CUDA = Dialect(
    name="cuda",
    vendor="NVIDIA",
    root_env=("CUDA_HOME", "CUDA_PATH"),
    default_roots=("/usr/local/cuda",),
    compiler="nvcc",
    compiler_relpaths=("bin/nvcc",),
    compile_flags=("-cubin", "-O3", "-lineinfo"),
    arch_flag="-arch={arch}",
    default_arch="sm_90",
    arch_env="KSDK_CUDA_ARCH",
    source_suffix=".cu",
    binary_format="cubin",
    libraries={
        "runtime": LibrarySpec(
            names=("libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"),
            root_dirs=("lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib"),
            why_missing="the CUDA runtime (libcudart) is not installed",
        ),
        # Never under the toolkit root: lib64/stubs/libcuda.so there is a link-time stub that fails at run time.
        "driver": LibrarySpec(
            names=("libcuda.so.1", "libcuda.so"),
            root_dirs=(),
            extra_dirs=("/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/wsl/lib"),
            why_missing="no NVIDIA driver on this machine",
        ),
    },
    functions={
        "get_device_count": ("runtime", "cudaGetDeviceCount"),
        "set_device": ("runtime", "cudaSetDevice"),
        "malloc": ("runtime", "cudaMalloc"),
        "free": ("runtime", "cudaFree"),
        "memcpy": ("runtime", "cudaMemcpy"),
        "memset": ("runtime", "cudaMemset"),
        "memset_async": ("runtime", "cudaMemsetAsync"),
        "device_synchronize": ("runtime", "cudaDeviceSynchronize"),
        "stream_create": ("runtime", "cudaStreamCreate"),
        "stream_destroy": ("runtime", "cudaStreamDestroy"),
        "stream_synchronize": ("runtime", "cudaStreamSynchronize"),
        "event_create": ("runtime", "cudaEventCreate"),
        "event_record": ("runtime", "cudaEventRecord"),
        "event_synchronize": ("runtime", "cudaEventSynchronize"),
        "event_elapsed_time": ("runtime", "cudaEventElapsedTime"),
        "event_destroy": ("runtime", "cudaEventDestroy"),
        "runtime_get_version": ("runtime", "cudaRuntimeGetVersion"),
        "driver_get_version": ("runtime", "cudaDriverGetVersion"),
        "get_last_error": ("runtime", "cudaGetLastError"),
        "init": ("driver", "cuInit"),
        "device_get": ("driver", "cuDeviceGet"),
        "device_get_name": ("driver", "cuDeviceGetName"),
        "device_get_attribute": ("driver", "cuDeviceGetAttribute"),
        "primary_ctx_retain": ("driver", "cuDevicePrimaryCtxRetain"),
        "ctx_set_current": ("driver", "cuCtxSetCurrent"),
        "module_load_data": ("driver", "cuModuleLoadData"),
        "module_get_function": ("driver", "cuModuleGetFunction"),
        "module_unload": ("driver", "cuModuleUnload"),
        "launch_kernel": ("driver", "cuLaunchKernel"),
        "func_get_attribute": ("driver", "cuFuncGetAttribute"),
    },
    error_strings={"runtime": ("cudaGetErrorString", "return"), "driver": ("cuGetErrorString", "out")},
    wave_size=32,
    visible_devices_env="CUDA_VISIBLE_DEVICES",
    device_nodes=("/dev/nvidia*", "/dev/nvidia-caps/*"),
    install_fix=("install the CUDA toolkit (nvcc, libcudart) and an NVIDIA driver (libcuda.so.1); set CUDA_HOME "
                 "if the toolkit is not in /usr/local/cuda; then pip install \"ksdk[cuda]\""),
    memcpy_kinds={"htod": 1, "dtoh": 2, "dtod": 3},  # cudaMemcpyKind
    # CUfunction_attribute: MAX_THREADS_PER_BLOCK=0, SHARED_SIZE_BYTES=1, LOCAL_SIZE_BYTES=3, NUM_REGS=4
    func_attributes={"max_threads_per_block": 0, "shared_size_bytes": 1, "local_size_bytes": 3, "num_regs": 4},
    # CUdevice_attribute: COMPUTE_CAPABILITY_MAJOR=75, MINOR=76
    device_attributes={"cc_major": 75, "cc_minor": 76},
    # illegal address, launch timeout, assert, hardware stack, illegal instruction, misaligned, address space,
    # invalid pc, launch failed: the context is corrupt after any of these (same numbers in runtime and driver)
    sticky_codes=frozenset({700, 702, 710, 714, 715, 716, 717, 718, 719}),
    oom_codes=frozenset({2}),
)


# -- MACA: one library, libmcruntime, holds runtime calls AND module load / launch (HIP-style names) -------
MACA = Dialect(
    name="maca",
    vendor="MetaX",
    root_env=("MACA_PATH", "MACA_HOME"),
    default_roots=("/opt/maca",),
    compiler="mxcc",
    compiler_relpaths=("mxgpu_llvm/bin/mxcc", "bin/mxcc"),
    # -x maca -fatbin: the device-only image mcModuleLoadData takes (tile-ai/tilelang-metax
    # tilelang/contrib/mxcc.py, MetaX-MACA/mcTriton). KSDK_MACA_COMPILE_FLAGS replaces this set, e.g. with
    # "-x maca -device-obj -O3" for the .mcbin format that tilelang-metax loads the same way.
    compile_flags=("-x", "maca", "-fatbin", "-O3", "-lineinfo"),
    arch_flag="--offload-arch={arch}",  # e.g. xcore1000 (C500 family); detected with macainfo when unset
    default_arch=None,
    arch_env="KSDK_MACA_ARCH",
    source_suffix=".maca",
    binary_format="mcfatbin",
    libraries={
        "runtime": LibrarySpec(names=("libmcruntime.so",), root_dirs=("lib",),
                               why_missing="the MACA runtime (libmcruntime.so) is not installed"),
    },
    functions={
        "get_device_count": ("runtime", "mcGetDeviceCount"),
        "set_device": ("runtime", "mcSetDevice"),
        "malloc": ("runtime", "mcMalloc"),
        "free": ("runtime", "mcFree"),
        # Direction-specific copies need no mcMemcpyKind value (those values are unconfirmed): seen in
        # MetaX's hip->mc mapping and in MACA programs calling mcMemcpyHtoD(dptr, host, size).
        "memcpy_htod": ("runtime", "mcMemcpyHtoD"),
        "memcpy_dtoh": ("runtime", "mcMemcpyDtoH"),
        "memset": ("runtime", "mcMemset"),
        "memset_async": ("runtime", "mcMemsetAsync"),
        "device_synchronize": ("runtime", "mcDeviceSynchronize"),
        "stream_create": ("runtime", "mcStreamCreate"),
        "stream_destroy": ("runtime", "mcStreamDestroy"),
        "stream_synchronize": ("runtime", "mcStreamSynchronize"),
        "event_create": ("runtime", "mcEventCreate"),
        "event_record": ("runtime", "mcEventRecord"),
        "event_synchronize": ("runtime", "mcEventSynchronize"),
        "event_elapsed_time": ("runtime", "mcEventElapsedTime"),
        "event_destroy": ("runtime", "mcEventDestroy"),
        "runtime_get_version": ("runtime", "mcRuntimeGetVersion"),
        "driver_get_version": ("runtime", "mcDriverGetVersion"),
        "get_last_error": ("runtime", "mcGetLastError"),
        "device_get_name": ("runtime", "mcDeviceGetName"),
        "module_load_data": ("runtime", "mcModuleLoadData"),
        "module_get_function": ("runtime", "mcModuleGetFunction"),
        "module_unload": ("runtime", "mcModuleUnload"),
        "launch_kernel": ("runtime", "mcModuleLaunchKernel"),
        "func_get_attribute": ("runtime", "mcFuncGetAttribute"),
    },
    error_strings={"runtime": ("mcGetErrorString", "return")},
    wave_size=64,
    visible_devices_env="MACA_VISIBLE_DEVICES",
    # MetaX's container guides pass these devices through (--device=/dev/dri --device=/dev/mxcd)
    device_nodes=("/dev/mxcd*", "/dev/dri/*"),
    install_fix=("install MetaX's MACA SDK (mxcc and libmcruntime.so) and point MACA_PATH at it, e.g. "
                 "export MACA_PATH=/opt/maca; then pip install \"ksdk[maca]\""),
    memcpy_kinds=None,
    # UNCONFIRMED: MC_FUNC_ATTRIBUTE_* names are in FlagTree's MetaX driver.c, their numbers are not public.
    # Assumed to follow CUDA's CUfunction_attribute order (as HIP's does); reported as unconfirmed extras only.
    func_attributes={"max_threads_per_block": 0, "shared_size_bytes": 1, "local_size_bytes": 3, "num_regs": 4},
    func_attributes_confirmed=False,
    device_attributes={},  # mcDeviceAttribute values are not public: never queried
    sticky_codes=frozenset(),  # unknown: the runner treats any error after a launch as a device fault
    oom_codes=frozenset(),  # unknown: a failed allocation is reported as out of memory
    notes=("mcError_t: only mcSuccess == 0 is confirmed",
           "MC_FUNC_ATTRIBUTE_* numbers unconfirmed (assumed CUDA order)",
           "mcMemcpyKind values unconfirmed: not used (mcMemcpyHtoD / mcMemcpyDtoH instead)"),
)

DIALECTS = {"cuda": CUDA, "maca": MACA}


# -- discovery ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Toolchain:
    """Where a dialect's files are on this machine."""

    root: Optional[Path]
    libraries: Mapping[str, Path]
    compiler: Optional[Path]
    searched: tuple[str, ...] = ()


def _ldconfig_paths() -> dict[str, str]:
    """soname -> full path from the dynamic linker's cache (what `ldconfig -p` prints)."""
    for exe in ("/sbin/ldconfig", "/usr/sbin/ldconfig", shutil.which("ldconfig") or ""):
        if exe and os.path.exists(exe):
            try:
                out = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.TimeoutExpired):
                continue
            found: dict[str, str] = {}
            for m in re.finditer(r"^\s*(\S+) \(([^)]*)\) => (\S+)$", out, re.M):
                if "x86-64" in m.group(2) or "64" in m.group(2) or sys.maxsize < 2**32:
                    found.setdefault(m.group(1), m.group(3))
            return found
    return {}


def toolkit_roots(dialect: Dialect, environ: Mapping[str, str]) -> list[tuple[str, Path]]:
    """Candidate toolkit roots in search order, each with the label saying where it came from."""
    roots: list[tuple[str, Path]] = []
    for var in dialect.root_env:
        if environ.get(var):
            roots.append((f"{var}={environ[var]}", Path(environ[var])))
    for d in dialect.default_roots:
        roots.append((d, Path(d)))
    on_path = shutil.which(dialect.compiler, path=environ.get("PATH"))
    if on_path:
        real = Path(on_path).resolve()
        for rel in dialect.compiler_relpaths:
            depth = len(Path(rel).parts)
            roots.append((f"{dialect.compiler} on PATH", real.parents[depth - 1]))
    return roots


def find_library(dialect: Dialect, key: str, roots: list[tuple[str, Path]],
                 environ: Mapping[str, str],
                 ldcache: Optional[dict[str, str]] = None) -> tuple[Optional[Path], list[str]]:
    """Full path of one library (cffi's dlopen wants one), and the places searched."""
    spec = dialect.libraries[key]
    searched: list[str] = []
    dirs: list[Path] = []
    for _label, root in roots:
        for rel in spec.root_dirs:
            dirs.append(root / rel)
    dirs += [Path(d) for d in spec.extra_dirs]
    dirs += [Path(d) for d in environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    for d in dirs:
        for n in spec.names:
            p = d / n
            if p.is_file():
                return p, searched
        searched.append(str(d))
    cache = _ldconfig_paths() if ldcache is None else ldcache
    for n in spec.names:
        if n in cache and os.path.isfile(cache[n]):
            return Path(cache[n]), searched
    searched.append("the system library path (ldconfig)")
    return None, searched


def find_compiler(dialect: Dialect, roots: list[tuple[str, Path]], environ: Mapping[str, str]) -> Optional[Path]:
    """The compiler under a root, else on PATH."""
    for _label, root in roots:
        for rel in dialect.compiler_relpaths:
            p = root / rel
            if p.is_file() and os.access(p, os.X_OK):
                return p
    on_path = shutil.which(dialect.compiler, path=environ.get("PATH"))
    return Path(on_path) if on_path else None


def locate(dialect: Dialect, environ: Optional[Mapping[str, str]] = None, need_compiler: bool = True,
           ldcache: Optional[dict[str, str]] = None) -> Toolchain:
    """Find the dialect's libraries and compiler, or raise ToolchainNotFound saying what is missing and how to fix
    it."""
    env = os.environ if environ is None else environ
    roots = toolkit_roots(dialect, env)
    root = next((r for _l, r in roots if r.is_dir()), None)
    libs: dict[str, Path] = {}
    searched_all: list[str] = [label for label, _ in roots]
    for key, spec in dialect.libraries.items():
        path, searched = find_library(dialect, key, roots, env, ldcache)
        if path is None:
            where = ", ".join([label for label, _ in roots] + searched) or "nowhere"
            raise ToolchainNotFound(f"{spec.why_missing} ({'/'.join(spec.names[:2])} not found; searched {where})",
                                    dialect.install_fix)
        libs[key] = path
    compiler = find_compiler(dialect, roots, env)
    if compiler is None and need_compiler:
        where = ", ".join(f"{label}/{rel}" for label, _ in roots for rel in dialect.compiler_relpaths)
        raise ToolchainNotFound(
            f"the {dialect.vendor} compiler {dialect.compiler} was not found (searched {where or 'nothing'} and PATH)",
            dialect.install_fix)
    return Toolchain(root=root, libraries=libs, compiler=compiler, searched=tuple(searched_all))


def target_arch(dialect: Dialect, toolchain: Optional[Toolchain] = None, detected: Optional[str] = None,
                environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The architecture to compile for: the override variable, else what the device reports, else the default."""
    env = os.environ if environ is None else environ
    if env.get(dialect.arch_env):
        return env[dialect.arch_env]
    if detected:
        return detected
    if dialect is MACA and toolchain is not None and toolchain.root is not None:
        return macainfo_arch(toolchain.root)
    return dialect.default_arch


def macainfo_arch(root: Path) -> Optional[str]:
    """The MetaX architecture macainfo reports (`Name: XCORE1000` -> xcore1000), or None."""
    exe = root / "bin" / "macainfo"
    if not exe.is_file():
        return None
    try:
        out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Name:\s+(XCORE\d+[a-zA-Z]*)", out)
    return m.group(1).lower() if m else None
