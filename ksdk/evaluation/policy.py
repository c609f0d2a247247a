"""Anti-cheating policy the judge applies to what a candidate's process reports: which PyTorch ops are bookkeeping
rather than compute, and which error kinds a candidate may claim."""

from __future__ import annotations

from typing import Iterable

from ksdk.models import ErrorKind

# Allocation, views, copies, dtype/device moves and metadata: a forward may always run these in PyTorch.
BOOKKEEPING_OPS = frozenset({
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like", "new_zeros",
    "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "fill_", "zero_", "scalar_tensor",
    "view", "_unsafe_view", "reshape", "_reshape_alias", "view_as", "as_strided", "expand", "expand_as",
    "permute", "transpose", "t", "squeeze", "unsqueeze", "flatten", "unflatten", "select", "slice", "narrow",
    "split", "split_with_sizes", "chunk", "unbind", "movedim", "alias", "detach", "lift_fresh", "lift_fresh_copy",
    "contiguous", "clone", "copy_", "_to_copy", "to", "_copy_from", "_copy_from_and_resize", "resize_",
    "set_", "_local_scalar_dense", "item", "is_nonzero", "size", "stride", "sym_size", "sym_stride", "sym_numel",
    "storage_offset", "numel", "dim", "is_contiguous", "record_stream", "arange", "linspace",
})
# Error kinds a candidate's process may report for itself; anything else it claims (such as an infrastructure
# error, which is not the candidate's fault and would escape the search's penalty) counts as a runtime error.
CLAIMABLE = frozenset({ErrorKind.SYNTAX, ErrorKind.IMPORT, ErrorKind.MISSING_ENTRY, ErrorKind.COMPILE,
                       ErrorKind.RUNTIME, ErrorKind.SHAPE, ErrorKind.DTYPE, ErrorKind.ALIASING,
                       ErrorKind.REWARD_HACK, ErrorKind.DEVICE_FAULT, ErrorKind.OOM})

def op_name(op: str) -> str:
    """'aten::silu.default' -> 'silu'; 'aten.add.Tensor' -> 'add'."""
    name = op.replace("::", ".").split(".")
    return name[1] if len(name) > 1 and name[0] == "aten" else name[0]


def compute_ops(ops: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """The recorded ops that are PyTorch compute the task does not allow (names as 'aten::name'), in order."""
    allow = {op_name(a) for a in allowed}
    if "*" in allow:
        return []
    out: list[str] = []
    for op in ops:
        name = op_name(str(op))
        if name.startswith("_") and name.lstrip("_") in BOOKKEEPING_OPS:
            continue
        if name in BOOKKEEPING_OPS or name in allow:
            continue
        label = f"aten::{name}"
        if label not in out:
            out.append(label)
    return out


def claimed_kind(kind: str) -> ErrorKind:
    """The error kind a candidate's process reported, as the judge accepts it."""
    try:
        k = ErrorKind(kind)
    except ValueError:
        return ErrorKind.RUNTIME
    return k if k in CLAIMABLE else ErrorKind.RUNTIME
