"""Helpers for the hostile-candidate suite: evaluate candidates written as attacks, and the tasks they attack.

Each attack reports what it managed through its verdict's message (a runtime error naming what it saw), since a
sandboxed candidate cannot write anywhere the test could read. A test then asserts the attack got nothing.
"""

from __future__ import annotations

import asyncio
from typing import Optional

from ksdk.evaluation.local import LocalEvaluator
from ksdk.models import Candidate, EvalResult, Task
from ksdk.tasks import task_from_source

# A C task large enough that one call takes about a millisecond: the judge's clock then has something to measure.
C_ADD_TASK = '''
import torch
import torch.nn as nn

KSDK_TASK = {"correctness_trials": 2, "timing": {"warmup": 2, "repetitions": 20, "min_time_ms": 10}}


class Model(nn.Module):
    def forward(self, a, b):
        return a + b


def get_inputs():
    return [torch.randn(1 << 20), torch.randn(1 << 20)]


def get_init_inputs():
    return []
'''

C_GOOD = """
void kernel(const float* restrict a, const float* restrict b, float* restrict out, long n, long n2) {
    (void)n2;
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}
"""


def c_with_python(code: str, body: str = "") -> str:
    """A correct C candidate whose shared object runs `code` (Python) in the candidate's process when loaded, as
    native code can: a constructor calling the interpreter's own PyRun_SimpleString."""
    escaped = code.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f"""
#include <dlfcn.h>
#include <stddef.h>
__attribute__((constructor)) static void attack(void) {{
    int (*ensure)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "PyGILState_Ensure");
    void (*release)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "PyGILState_Release");
    int (*run)(const char*) = (int (*)(const char*))dlsym(RTLD_DEFAULT, "PyRun_SimpleString");
    if (!ensure || !release || !run) return;
    int g = ensure();
    run("{escaped}");
    release(g);
}}
{body or C_GOOD}
"""


def c_task(**settings) -> Task:
    return task_from_source("c_add", C_ADD_TASK, **settings)


def triton_task(**settings) -> Task:
    from ksdk_triton_nvidia.conformance import TASK

    return task_from_source("t", TASK, **settings)


# The conformance kit's correct candidate, its kernel launched through a `launch` helper that attacks can call.
LAUNCH = """def launch(x, y, out, scale):
    n = x.numel()
    fused_kernel[(triton.cdiv(n, BLOCK_SIZE),)](x, y, out, n, scale, BLOCK=BLOCK_SIZE)
    return out


class ModelNew"""
GOOD_FORWARD = """out = torch.empty_like(x)
        n = x.numel()
        fused_kernel[(triton.cdiv(n, BLOCK_SIZE),)](x, y, out, n, self.scale, BLOCK=BLOCK_SIZE)
        return out"""
FORWARD = "return launch(x, y, torch.empty_like(x), self.scale)"


def triton_good() -> str:
    """A correct candidate for triton_task(): relu(x * scale + y) by one Triton kernel, through `launch`."""
    from ksdk_triton_nvidia.conformance import GOOD

    return sub(sub(GOOD, "class ModelNew", LAUNCH), GOOD_FORWARD, FORWARD)


def sub(source: str, old: str, new: str) -> str:
    """`source` with `old` replaced by `new`; an error if `old` is not there (an attack that silently became an
    honest candidate would prove nothing)."""
    assert old in source, f"{old!r} not in the source"
    return source.replace(old, new)


def evaluate(backend: str, task: Task, *sources: str, **kwargs) -> list[EvalResult]:
    """Each source evaluated in turn on one judge (no cache), so one attack's effect on the next shows."""

    async def go():
        ev = LocalEvaluator(backend, cache=False, workers=1, **kwargs)
        try:
            return [await ev.evaluate(task, Candidate(source=s, language=ev.language)) for s in sources]
        finally:
            await ev.close()

    return asyncio.run(go())


def report_line(message: str, tag: str = "SAW") -> Optional[str]:
    """The attack's own report in a verdict message: the text after `tag:` on its line."""
    for line in message.splitlines():
        if f"{tag}:" in line:
            return line.split(f"{tag}:", 1)[1].strip()
    return None
