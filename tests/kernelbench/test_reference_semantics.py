"""KernelBench's modules are judged as constructed (training mode: BatchNorm normalises with the batch's statistics)
and the reference and the candidate draw random numbers from the same generator state in each trial (dropout), so
the reference always passes as its own candidate; a candidate that leaves the random draw out does not. These run
the reference as its own candidate through the real judge (Triton's interpreter on the CPU; on 8ab2c7c the
BatchNorm problems failed trial 0 with values of the other normalisation mode, and dropout failed on its mask)."""

from tritonkit import evaluate_in_order, small_task

from ksdk.models import ErrorKind, Stage, Status

SELF = "\n\nModelNew = Model\n"

BATCHNORM = '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.conv = nn.Conv2d(3, features, 3)
        self.bn = nn.BatchNorm2d(features)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))

def get_inputs():
    return [torch.randn(8, 3, 16, 16) * 3 + 1]

def get_init_inputs():
    return [16]
'''

DROPOUT = '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self, n, p):
        super().__init__()
        self.linear = nn.Linear(n, n)
        self.dropout = nn.Dropout(p)

    def forward(self, x):
        return torch.softmax(self.dropout(self.linear(x)), dim=1)

def get_inputs():
    return [torch.randn(64, 128)]

def get_init_inputs():
    return [128, 0.2]
'''

NO_DROPOUT = '''
class ModelNew(Model):
    def forward(self, x):
        return torch.softmax(self.linear(x), dim=1)
'''


def _self_check(source: str, candidate: str = SELF):
    task = small_task(source, "semantics", allow_torch_ops=["*"])
    (r,) = evaluate_in_order([(task, source + candidate)])
    return r


def test_a_batchnorm_reference_passes_as_its_own_candidate_in_training_mode():
    r = _self_check(BATCHNORM)
    assert r.status == Status.OK and r.stage.order >= Stage.CORRECTNESS.order, (r.error_kind, r.message)


def test_a_dropout_reference_passes_as_its_own_candidate_with_the_same_generator_state():
    r = _self_check(DROPOUT)
    assert r.status == Status.OK, (r.error_kind, r.message)


def test_leaving_the_dropout_out_is_wrong():
    r = _self_check(DROPOUT, NO_DROPOUT)
    assert r.status == Status.FAILED and r.error_kind == ErrorKind.VALUE, (r.error_kind, r.message)


def test_a_verdict_from_the_interpreter_is_its_own_kind():
    """Correct in Triton's interpreter is not a device result: the verdict says so, carries no speedup, and neither
    ksdk bench nor the export counts it as verified (a Triton candidate can be right only when TRITON_INTERPRET=1)."""
    from ksdk.bench.runner import from_result
    from ksdk.bench.store import INTERPRETED, metrics_by_level
    from ksdk.bench.suite import Problem

    r = _self_check(DROPOUT)
    assert r.status == Status.OK and r.interpreted and r.speedup is None
    assert "not run on a device" in r.verdict() and "not run on a device" in r.feedback()
    rec = from_result(Problem(name="66_p", level=2, path="/x/level2/66_p.py"), r)
    assert rec.verdict == INTERPRETED and not rec.correct
    m = metrics_by_level([rec])["all"]
    assert (m.problems, m.correct, m.interpreted) == (0, 0, 1)
