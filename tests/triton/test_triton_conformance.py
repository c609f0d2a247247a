"""triton_nvidia passes the shared backend conformance kit (interpreter here, GPU on the device machine)."""

from ksdk.testing.conformance import BackendConformance, Case
from ksdk_triton_nvidia.conformance import cases


class TestTritonNvidiaConformance(BackendConformance):
    backend = "triton_nvidia"

    def cases(self):
        return {key: Case(task, cand, name=f"conformance_{key}") for key, (task, cand) in cases().items()}
