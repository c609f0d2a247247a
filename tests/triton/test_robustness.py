"""Crashing and hanging candidates get their verdict; the worker is replaced and the next verdict is unaffected."""

from __future__ import annotations

from ksdk.models import ErrorKind, Stage, Status
from ksdk_triton_nvidia.conformance import GOOD

from tritonkit import evaluate_in_order, small_task

SEGFAULT = GOOD.replace("out = torch.empty_like(x)", "import ctypes\n        ctypes.string_at(0)")
# Hangs from its second call on: the first call passes, the correctness stage's limit kills it.
HANG = GOOD.replace("class ModelNew", "_calls = [0]\n\n\nclass ModelNew").replace(
    "out = torch.empty_like(x)", "_calls[0] += 1\n        while _calls[0] > 1:\n            pass\n"
    "        out = torch.empty_like(x)")
SPY = GOOD.replace("out = torch.empty_like(x)", "import os\n        assert 'OPENAI_API_KEY' not in os.environ, 'leak'\n"
                   "        out = torch.empty_like(x)")


def test_secret_crash_hang_then_good_on_one_worker(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    task = small_task(timeouts={"load": 60, "compile": 60, "correctness": 3, "performance": 60})
    spy, segv, hang, good = evaluate_in_order([(task, SPY), (task, SEGFAULT), (task, HANG), (task, GOOD)])
    assert spy.status == Status.OK, f"the worker environment leaked a secret: {spy.message}"
    # the first call is the correctness stage's (only Triton's own compilation inside it is the compile stage's)
    assert (segv.status, segv.error_kind, segv.stage) == (Status.FAILED, ErrorKind.CRASH, Stage.CORRECTNESS)
    assert "SIGSEGV" in segv.message
    assert (hang.error_kind, hang.stage) == (ErrorKind.TIMEOUT, Stage.CORRECTNESS), hang.message
    assert "3 s" in hang.message
    assert good.status == Status.OK and good.correct, good.message
