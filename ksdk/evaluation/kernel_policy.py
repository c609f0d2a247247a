"""PyTorch doing the work, judged from two records a candidate's process keeps of one call: the aten ops its op
recorder saw (`torch_ops`) and the kernel launches its kernel record saw (`kernels`: names by kind, from CUPTI in the
Triton backend), beside the launches Triton's own launch hook counted. Either record alone can be switched off from
inside that process; a disagreement between them is itself the verdict."""

from __future__ import annotations

from typing import Iterable, Optional

from ksdk.evaluation.policy import compute_ops, op_name

SHOWN = 6  # kernel names quoted in a message


def _names(names: list[str]) -> str:
    unique = list(dict.fromkeys(names))
    more = f" and {len(unique) - SHOWN} more" if len(unique) > SHOWN else ""
    return ", ".join(unique[:SHOWN]) + more


def kernel_verdict(torch_ops: Optional[list[str]], kernels: Optional[dict[str, list[str]]], lost: bool,
                   triton_launches: Optional[int], allowed: Iterable[str]) -> Optional[str]:
    """None, or why the call is a reward hack: the kernel record stopped (`lost`), it saw PyTorch/cuBLAS compute
    kernels the task does not allow or the op recorder did not report, it saw none of the Triton launches the launch
    hook counted, or the forward replayed a CUDA graph. No record (`kernels` None, not lost): None."""
    allow = {op_name(a) for a in allowed}
    if "*" in allow:
        return None
    if lost:
        return ("the kernel record (CUPTI, set up before the candidate's code) was switched off during the "
                "candidate's forward: candidates must not touch the harness's profiling hooks")
    if kernels is None:
        return None
    compute = list(kernels.get("library-compute") or [])
    if compute:
        if torch_ops is not None and not compute_ops(torch_ops, []):
            return (f"the kernel record saw PyTorch/cuBLAS compute kernels ({_names(compute)}) that the op recorder "
                    "did not report: the forward hid PyTorch work from it (e.g. _disable_current_modes, "
                    "torch.compile); the candidate's kernels must compute the result")
        if not allow:
            return (f"PyTorch/cuBLAS computed part of the output: kernels {_names(compute)} ran during the forward; "
                    "the candidate's kernels must compute the result (a task may allow ops through KSDK_TASK's "
                    "allow_torch_ops)")
    graphs = list(kernels.get("graph") or [])
    if graphs:
        return (f"the forward replayed a CUDA graph ({len(graphs)} launch(es)): the kernels inside a graph cannot be "
                "attributed; launch kernels directly")
    if triton_launches and not kernels.get("jit"):
        seen = sum(len(v) for v in kernels.values())
        return (f"Triton's launch hook counted {triton_launches} launch(es) but the kernel record saw no Triton "
                f"kernel ({seen} launch(es) in all): the kernel record was switched off")
    return None


def record_warning(kernels: Optional[dict[str, list[str]]], reason: Optional[str], lost: bool) -> Optional[str]:
    """A warning for the result when there was no kernel record to cross-check (None when there was one)."""
    if kernels is not None or lost:
        return None
    return (f"no kernel record in the candidate's process ({reason or 'not reported'}): PyTorch work was judged from "
            "the op recorder alone")
