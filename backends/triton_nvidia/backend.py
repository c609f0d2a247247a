"""TritonNvidiaBackend: the plugin class registered under `ksdk.backends` as `triton_nvidia`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from ksdk.interfaces.backend import Backend, RunContext, Runner
from ksdk.models import Availability, ErrorKind, EvalResult
from ksdk.languages import Language
from ksdk_triton_nvidia import probe as _probe

HINTS = """\
Triton on NVIDIA (ksdk backend triton_nvidia):
- Define `class ModelNew(nn.Module)` with the reference Model's constructor and forward signature; its
  forward must launch @triton.jit kernels that write every output (outputs computed by PyTorch ops alone,
  cached or reused outputs, views of inputs and in-place writes to inputs are rejected).
- Allocate outputs on every call with torch.empty_like(x) / device=x.device (never device='cuda': correctness
  also runs in Triton's interpreter on the CPU).
- Do not touch torch.cuda timing, streams, seeds, Triton's launch hooks or the reference module.
- Constants marked `# ksdk:tune [..]` (BLOCK sizes, num_warps, num_stages) are tuned by the parameter mutator.
"""

SEED_TIMEOUT_S = 120.0

# Candidates are Python modules: '#' comments, Python code fences, and a reply without a fence is a program when a
# line starts like Python's top-level code.
TRITON = Language(name="triton", extensions=(".py",), fence_tags=("python", "py", "python3", "triton"),
                  line_comments=("#",), kernel_pattern=r"^\s*@triton\.jit\b", matmul_pattern=r"\btl\.dot\(",
                  program_patterns=(r"^(?:import [\w.]+|from [\w.]+ import |def \w+\s*\(|class \w+\s*[(:]|@[\w.]+)",))


class TritonNvidiaBackend(Backend):
    """Candidates are Python files defining ModelNew whose forward launches Triton kernels."""

    name = "triton_nvidia"
    language = TRITON
    version = "0.1.0"
    requires_kernels = True
    places_outputs = True  # a timed batch's outputs land in the judge's arena through a PyTorch memory pool
    _nvml = None  # the judge's NVML handle of its GPU, found on first use

    @classmethod
    def probe(cls) -> Availability:
        return _probe.probe()

    @classmethod
    def device_env(cls, device: int) -> dict[str, str]:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:
            ids = [x.strip() for x in visible.split(",") if x.strip()]
            return {"CUDA_VISIBLE_DEVICES": ids[device] if device < len(ids) else str(device)}
        return {"CUDA_VISIBLE_DEVICES": str(device)}

    @classmethod
    def env_allowlist(cls) -> tuple[str, ...]:
        return ("TRITON_*", "TORCHINDUCTOR_*")

    @classmethod
    def sandbox_paths(cls) -> list[str]:
        """The C compiler Triton builds its launcher with (its whole installation), and the CUDA toolkit."""
        paths = []
        cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
        if cc:
            real = os.path.realpath(shutil.which(cc) or cc)
            paths.append(os.path.dirname(os.path.dirname(real)))
        for var in ("CUDA_HOME", "CUDA_PATH", "TRITON_PTXAS_PATH", "TRITON_CUOBJDUMP_PATH", "TRITON_NVDISASM_PATH"):
            if os.environ.get(var):
                paths.append(os.environ[var])
        return [p for p in paths if p and p != "/"]

    @classmethod
    def sandbox_devices(cls, ctx: RunContext) -> list[str]:
        return ["/dev/nvidia*", "/dev/nvidia-caps/*", "/dev/nvidia-caps-imex-channels/*"]

    def runner(self, ctx: RunContext) -> Runner:
        from ksdk_triton_nvidia.runner import TritonRunner

        return TritonRunner(ctx)

    def reference_device(self, ctx: RunContext) -> str:
        return "cpu" if ctx.interpret else "cuda"

    def memory(self, ctx: RunContext):
        if ctx.interpret:
            from ksdk.evaluation.shared import HostMemory

            return HostMemory(view="torch")
        from ksdk_triton_nvidia.devshare import CudaMemory

        return CudaMemory(0)

    def warm_up(self, ctx: RunContext) -> None:
        from ksdk_triton_nvidia.runner import warm_up

        warm_up(ctx.interpret)

    def seed_cache(self, ctx: RunContext, folder: Path, requests: Sequence[Any] = ()) -> None:
        """Triton's driver utilities (first call) and the launchers of signatures candidates used (later calls),
        built by ksdk_triton_nvidia.seed into the cache a candidate's process reads (/tmp/.triton in its sandbox):
        C compilations each fresh process would otherwise pay for."""
        if ctx.interpret:
            return
        from ksdk_triton_nvidia.seed import valid_signature

        args: list[str] = []
        if requests:
            signatures = [r for r in requests if valid_signature(r)]
            if not signatures:
                return
            args = ["--launchers", json.dumps(signatures)]
        env = dict(os.environ, TRITON_CACHE_DIR=str(folder / ".triton"), TRITON_INTERPRET="0")
        subprocess.run([sys.executable, "-m", "ksdk_triton_nvidia.seed", *args], env=env, timeout=SEED_TIMEOUT_S,
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def hints(self) -> str:
        return HINTS

    def versions(self) -> dict[str, str]:
        from ksdk_triton_nvidia.runner import versions

        v = versions(False)
        try:
            import torch

            v["cuda"] = str(torch.version.cuda)
        except ImportError:
            pass
        devs, _ = _probe.cuda_devices()
        if devs and devs[0].driver:
            v["driver"] = devs[0].driver
        return v

    def telemetry(self, ctx: RunContext) -> dict:
        if ctx.interpret:
            return {}
        from ksdk_triton_nvidia import clocks

        return clocks.read(self._nvml_handle())

    def memory_used(self, ctx: RunContext) -> Optional[int]:
        if ctx.interpret:
            return None
        from ksdk_triton_nvidia import clocks

        return clocks.memory_used(self._nvml_handle())

    def memory_by_process(self, ctx: RunContext) -> Optional[dict[int, int]]:
        if ctx.interpret:
            return None
        from ksdk_triton_nvidia import clocks

        return clocks.memory_by_process(self._nvml_handle())

    def _nvml_handle(self):
        """NVML's handle of the judge's GPU (torch's device 0), found once."""
        if self._nvml is None:
            import torch

            from ksdk_triton_nvidia import clocks

            self._nvml = clocks.handle(str(getattr(torch.cuda.get_device_properties(0), "uuid", "") or ""))
        return self._nvml

    def sticky_error(self, result: EvalResult) -> bool:
        """Recycle the judge only when its own CUDA context may be broken (candidates run in other processes)."""
        from ksdk_triton_nvidia.diagnose import STICKY

        return bool(result.error_kind == ErrorKind.INFRA and result.device.kind == "gpu"
                    and STICKY.search(result.message or ""))
