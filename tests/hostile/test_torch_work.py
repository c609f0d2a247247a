"""PyTorch computing the answer is not the candidate's speedup: a forward that runs PyTorch compute ops is
rejected with the ops named, unless the task allows them."""

from hostilekit import evaluate

from ksdk.models import ErrorKind, Status
from ksdk.tasks import task_from_source

TASK = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

KSDK_TASK = ALLOW


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(96))

    def forward(self, x, w):
        return F.silu(x @ w) + self.bias


def get_inputs():
    return [torch.randn(32, 64), torch.randn(64, 96)]


def get_init_inputs():
    return []
'''

PRELUDE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import triton
import triton.language as tl


@triton.jit
def copy_kernel(src, dst, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(dst + offs, tl.load(src + offs, mask=offs < n), mask=offs < n)


@triton.jit
def silu_bias_kernel(src, bias, dst, n, cols, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    v = tl.load(src + offs, mask=m)
    b = tl.load(bias + offs % cols, mask=m)
    tl.store(dst + offs, v / (1.0 + tl.exp(-v)) + b, mask=m)


def decoy(t):
    out = torch.empty_like(t)
    copy_kernel[(triton.cdiv(t.numel(), 1024),)](t, out, t.numel(), BLOCK=1024)
    return out


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(96))
        self.act = nn.SiLU()

    def forward(self, x, w):
        BODY
'''

CASES = {
    "functional": "return decoy(F.silu(x @ w) + self.bias)",  # computed by PyTorch, copied by a decoy kernel
    "module_and_method": "return decoy(self.act(x.matmul(w)).add(self.bias))",  # reached through nn and Tensor methods
    "thread": "import threading\n        box = []\n        t = threading.Thread(target=lambda: box.append("
              "F.silu(x @ w) + self.bias))\n        t.start()\n        t.join()\n        return decoy(box[0])",
    "allowed_matmul": "h = x @ w\n        out = torch.empty_like(h)\n        silu_bias_kernel[(triton.cdiv(h.numel(), "
                      "1024),)](h, self.bias, out, h.numel(), h.shape[1], BLOCK=1024)\n        return out",
}


def run(key, allow):
    task = task_from_source("silu_bias", TASK.replace("ALLOW", repr({"allow_torch_ops": allow})))
    (r,) = evaluate("triton_nvidia", task, PRELUDE.replace("BODY", CASES[key]))
    return r


def test_pytorch_computing_the_answer_behind_a_decoy_kernel_is_rejected_naming_the_ops():
    r = run("functional", [])
    assert r.error_kind == ErrorKind.REWARD_HACK, r.message
    assert "aten::silu" in r.message and "aten::add" in r.message and "aten::mm" in r.message


def test_ops_reached_through_modules_and_tensor_methods_count():
    r = run("module_and_method", [])
    assert r.error_kind == ErrorKind.REWARD_HACK and "aten::silu" in r.message, r.message


def test_pytorch_work_moved_to_another_thread_is_rejected():
    r = run("thread", [])
    assert r.error_kind == ErrorKind.REWARD_HACK and "thread" in r.message, r.message


def test_a_task_may_allow_named_ops():
    assert run("allowed_matmul", ["aten::mm"]).status == Status.OK
    r = run("allowed_matmul", [])
    assert r.error_kind == ErrorKind.REWARD_HACK and "aten::mm" in r.message, r.message
