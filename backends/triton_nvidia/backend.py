"""TritonNvidiaBackend: the plugin class registered under `ksdk.backends` as `triton_nvidia`."""

from __future__ import annotations

import os

from ksdk.interfaces.backend import Backend, EvalContext
from ksdk.models import Availability, Candidate, EvalResult, Task
from ksdk_triton_nvidia import probe as _probe


class TritonNvidiaBackend(Backend):
    """Candidates are Python files defining ModelNew whose forward launches Triton kernels."""

    name = "triton_nvidia"
    language = "triton"
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
