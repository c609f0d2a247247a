"""TritonNvidiaBackend: the plugin class registered under `ksdk.backends` as `triton_nvidia`."""

from __future__ import annotations

import os

from ksdk.interfaces.backend import Backend, EvalContext
from ksdk.languages import Language
from ksdk.models import Availability, Candidate, ErrorKind, EvalResult, Task
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

    def evaluate(self, task: Task, candidate: Candidate, ctx: EvalContext) -> EvalResult:
        from ksdk_triton_nvidia.runner import evaluate

        return evaluate(task, candidate, ctx)

    def warm_up(self, ctx: EvalContext) -> None:
        from ksdk_triton_nvidia.runner import warm_up

        warm_up(ctx.interpret)

    def hints(self) -> str:
        return HINTS

    def versions(self) -> dict[str, str]:
        # Metadata only: triton must not be imported before the runner sets TRITON_INTERPRET for this worker.
        import platform
        from importlib.metadata import PackageNotFoundError, version

        v = {"python": platform.python_version()}
        for pkg in ("torch", "triton"):
            try:
                v[pkg] = version(pkg)
            except PackageNotFoundError:
                pass
        devs, _ = _probe.cuda_devices()
        if devs and devs[0].driver:
            v["driver"] = devs[0].driver
        return v

    def sticky_error(self, result: EvalResult) -> bool:
        """Recycle after device faults, OOM and cheats (a cheater may have left patches behind)."""
        from ksdk_triton_nvidia.diagnose import STICKY

        if result.error_kind in (ErrorKind.DEVICE_FAULT, ErrorKind.OOM, ErrorKind.REWARD_HACK, ErrorKind.INFRA):
            return True
        return bool(result.message and result.device.kind == "gpu" and STICKY.search(result.message))
