"""NativeBackend: the Backend every cffi dialect shares; a subclass names its Dialect and nothing else."""

from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path
from typing import ClassVar, Optional

from ksdk.interfaces.backend import Backend, RunContext, Runner
from ksdk.models import Availability, DeviceInfo
from ksdk.languages import Language
from ksdk_native.dialect import Dialect, ToolchainNotFound, locate

BASELINE = "NATIVE_BASELINE"

CANDIDATE_HINTS = """\
Candidates are {lang} C++ source compiled device-only by {compiler} ({fmt}) and launched through the runtime's
module API. Kernels must be `extern "C" __global__`. A comment carries the launch description as JSON:
  /* ksdk:launch {{"kernel": "k", "grid": ["cdiv(n, BLOCK)"], "block": ["BLOCK"], "shared_mem": 0,
                  "scalars": [{{"name": "n", "type": "int64", "value": "in0.numel"}}]}} */
Kernel arguments in order: the task's inputs (in0, in1, ...; device pointers), its outputs (out0, ...),
the model's parameters (p0, ... in state_dict order), then the scalars. Expressions may use numeric
#defines, scalars, inN/outN/pN .numel .shape[i] .ndim .nbytes, initN and cdiv/min/max.
Several launches: {{"launches": [{{...}}, {{...}}], "scalars": [...],
  "workspaces": [{{"name": "ws", "bytes": "..."}}]}}; a launch may list its own "args" by name.
Declare tunables as `#define BLOCK 256 // ksdk:tune [128, 256, 512]`.
Wave (warp) size here: {wave}. Outputs are poisoned before each run: write every element."""


def native_language(name: str, extensions: tuple[str, ...]) -> Language:
    """A CUDA-like C++ dialect's language: '//' comments, code fences tagged with its name or as C++/CUDA, and a
    reply without a fence is a program when it has braces, semicolons and a line starting like C++ code."""
    return Language(
        name=name, extensions=extensions, fence_tags=(name, "cpp", "c++", "cxx", "cu", "cuda", "hip", "c", "h", "hpp"),
        line_comments=("//",), kernel_pattern=r"\b__global__\b", matmul_pattern=r"\b(wmma|mma)(::|\.|_sync\b)",
        program_patterns=(r"\{", r";", r"^\s*(#include|#define|__global__|extern|static|template|typedef|struct|"
                                      r"const|int|void|float|double)\b"))


class NativeBackend(Backend):
    """A native dialect's backend: probe its toolchain and devices, evaluate candidates in a worker."""

    dialect: ClassVar[Dialect]
    version = "0.1.0"
    needs_params = True  # kernels receive the reference model's weights (p0, p1, ...)
    host_code = False  # candidates are device code loaded through the module API: nothing of theirs runs on the host

    def __init__(self):
        self._session = None

    @classmethod
    def probe(cls) -> Availability:
        d = cls.dialect
        if importlib.util.find_spec("cffi") is None:
            return Availability(name=cls.name, available=False, reason="Python package cffi not installed",
                                fix=f'pip install "ksdk[{cls.extra}]" (from a checkout: pip install ".[{cls.extra}]")')
        try:
            toolchain = locate(d)
        except ToolchainNotFound as e:
            return Availability(name=cls.name, available=False, reason=e.reason, fix=e.fix)
        try:
            from ksdk_native.binding import Binding, MissingSymbol, NativeError

            binding = Binding(d, toolchain)
            count = binding.device_count()
        except ToolchainNotFound as e:
            return Availability(name=cls.name, available=False, reason=e.reason, fix=e.fix)
        except (NativeError, MissingSymbol) as e:
            return Availability(name=cls.name, available=False,
                                reason=f"the {d.vendor} runtime reports no usable device: {e}", fix=d.install_fix)
        if count < 1:
            return Availability(name=cls.name, available=False, reason=f"the {d.vendor} runtime sees no device",
                                fix=f"check the driver and {d.visible_devices_env}")
        try:
            names = binding.device_names(count)
        except (NativeError, MissingSymbol):
            names = [f"{d.vendor} device {i}" for i in range(count)]
        devices = [DeviceInfo(index=i, name=n, kind="gpu") for i, n in enumerate(names)]
        return Availability(name=cls.name, available=True, devices=devices)

    @classmethod
    def device_env(cls, device: int) -> dict[str, str]:
        var = cls.dialect.visible_devices_env
        visible = os.environ.get(var)
        if visible:
            ids = [x.strip() for x in visible.split(",") if x.strip()]
            return {var: ids[device] if device < len(ids) else str(device)}
        return {var: str(device)}

    def _open(self, device: int):
        if self._session is None:
            from ksdk_native.runner import open_session

            self._session = open_session(self.dialect, device)
        return self._session

    def runner(self, ctx: RunContext) -> Runner:
        from ksdk_native.runner import NativeRunner

        return NativeRunner(self.dialect, lambda: self._open(ctx.device))

    def baseline_source(self, task_source: str) -> Optional[tuple[str, str]]:
        """NATIVE_BASELINE in the task file: a naive kernel (a string, or {language: string}), read without
        running the file."""
        for node in ast.parse(task_source).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == BASELINE for t in node.targets):
                try:
                    value = ast.literal_eval(node.value)
                except ValueError:
                    return None
                if isinstance(value, dict):
                    value = value.get(self.dialect.name)
                if isinstance(value, str):
                    return f"the task's naive {self.dialect.name} kernel ({BASELINE})", value
        return None

    @classmethod
    def sandbox_paths(cls) -> list[str]:
        """The toolkit (compiler, headers, runtime libraries) wherever it is installed."""
        try:
            toolchain = locate(cls.dialect)
        except ToolchainNotFound:
            return []
        paths = [str(toolchain.root)] if toolchain.root else []
        if toolchain.compiler:
            paths.append(str(Path(toolchain.compiler).resolve().parent.parent))
        paths += [str(Path(p).resolve().parent) for p in toolchain.libraries.values()]
        return paths

    @classmethod
    def sandbox_devices(cls, ctx: RunContext) -> list[str]:
        return list(cls.dialect.device_nodes)

    def hints(self) -> str:
        d = self.dialect
        return CANDIDATE_HINTS.format(lang=d.name.upper(), compiler=d.compiler, fmt=d.binary_format, wave=d.wave_size)

    def versions(self) -> dict[str, str]:
        out = {"ksdk_native": self.version, "dialect": self.dialect.name}
        try:
            toolchain = locate(self.dialect)
        except ToolchainNotFound:
            return out
        from ksdk_native.compiler import compiler_version

        if toolchain.compiler:
            out[f"{self.dialect.name}_compiler"] = compiler_version(toolchain.compiler)
        return out

    extra: ClassVar[Optional[str]] = None  # the pip extra that installs what the backend needs
