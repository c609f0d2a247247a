"""The candidate's process holds no more than the timed batch needs: the last correctness call's outputs, kept to
catch a forward that returns the previous call's storage, are let go when the batch is prepared (on a GPU that was
one output's size, 6 GiB for 19_ReLU, held through the whole timing)."""

import os

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("triton")


def test_preparing_the_batch_lets_the_last_calls_outputs_go():
    from ksdk_triton_nvidia.conformance import GOOD, TASK
    from ksdk_triton_nvidia.runner import TritonRunner

    from ksdk.interfaces.backend import RunContext, TaskView

    spec = {"shape": [64, 96], "dtype": "float32"}
    runner = TritonRunner(RunContext(interpret=True))
    runner.setup(TaskView(name="t", source=TASK, seed=1, init_inputs=[], params=[], inputs=[spec, spec],
                          outputs=[spec]))
    runner.load(GOOD)
    runner.build()
    x, y, out = torch.randn(64, 96), torch.randn(64, 96), torch.empty(64, 96)
    runner.call([x, y], [out])
    assert len(runner.keep) == 1 and torch.equal(runner.keep[0], out)  # kept after the call
    runner.prepare_batch([[x, y]], [[out]])
    assert runner.keep == []
