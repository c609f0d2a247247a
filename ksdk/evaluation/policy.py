"""Anti-cheating policy the judge applies to what a candidate's process reports: which PyTorch ops are bookkeeping
rather than compute, which error kinds a candidate may claim, and how far a reported time may sit from the judge's
own clock."""

from __future__ import annotations

from typing import Iterable, Optional

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

# The judge-clocked batch: the candidate's reported median must not lie below (B - ABS) / (1 + REL), where B is
# the judge's wall-clock time per call over back-to-back calls (output copies removed). REL covers L2 and clock
# differences between the two methods; ABS the per-call launch overhead that events do not see. Without a CUDA
# graph the launches are Python's, so ABS is larger.
BOUND_REL = {"graph": 0.25, "eager": 0.25, "host": 0.6}  # host: every batch call touches fresh memory, whose
# first use costs a CPU kernel up to ~30% more than in the timed repetitions on reused buffers (measured, cpu_c)
BOUND_ABS_MS = {"graph": 0.008, "eager": 0.1, "host": 0.05}  # eager: a Python loop over calls on a busy machine
# Once per batch, not per call: the request's round trip, the final synchronisation, the first replay. Measured on
# an H200 at about 0.37 ms (16 graph replays of a 33 us kernel timed at 55 us each), so twice that is allowed.
BATCH_FIXED_MS = {"graph": 0.75, "eager": 0.75, "host": 0.3}
# A reported median this far above the judge's clock means the backend's timer is off (a warning, not a verdict).
OVER_REL, OVER_ABS_MS = 1.0, 0.1
BATCH_TARGET_MS = 40.0  # device time the batch aims for (so the reply's latency is a small share of it)
BATCH_MAX_CALLS = {"graph": 64, "eager": 256, "host": 1024}  # graphs are captured one per call: fewer
BATCH_CHECKS = 3  # calls of the batch whose outputs the judge checks at least: the last one, then others in an order
BATCH_CHECK_BUDGET_MS = 200.0  # drawn after it ends, as many as fit in this time (each check makes the call's inputs
# and reference again): a candidate that skips work in a share s of calls passes with probability (1 - s)^checks
BATCH_SETTLE_MS = 50.0  # after the batch's reply, how long outputs still being written may take to appear (device
# work queued before the reply); the judge's clock runs until they have. Frozen host threads never finish theirs.


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


def bound_mode(mode: Optional[str], memory_kind: str) -> str:
    """The slack that applies: work sharing host memory is bounded as host work, whatever the Runner says."""
    if memory_kind != "cuda":
        return "host"
    return mode if mode in ("graph", "eager") else "eager"


def bound_floor_ms(judge_ms: float, mode: str, calls: int = 1 << 30) -> float:
    """The lowest median the judge accepts given its own per-call figure `judge_ms` over `calls` calls."""
    slack = BOUND_ABS_MS.get(mode, BOUND_ABS_MS["eager"]) + BATCH_FIXED_MS.get(mode, 0.75) / max(1, calls)
    return (judge_ms - slack) / (1 + BOUND_REL.get(mode, BOUND_REL["eager"]))
