"""The correctness policy shared by every backend: compare outputs with the reference on the host.

Beyond allclose it rejects NaN/Inf, wrong shapes and dtypes, constant outputs where the reference varies,
and outputs that pass only because the reference is tiny (judged against the reference's own scale).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from ksdk.models import ErrorKind, OutputCheck, Tolerance


def scale_rtol(tol: Tolerance) -> float:
    """Largest error allowed relative to the reference's scale (max |ref|)."""
    return max(10.0 * tol.rtol, 1e-3)


def compare_outputs(
    outs: Sequence[np.ndarray],
    refs: Sequence[np.ndarray],
    tolerance: Callable[[str], Tolerance],
    out_dtypes: Optional[Sequence[str]] = None,
    ref_dtypes: Optional[Sequence[str]] = None,
) -> tuple[list[OutputCheck], Optional[tuple[ErrorKind, str]]]:
    """Compare each output with its reference (numpy arrays, or torch tensors on any one device); returns the
    per-output checks and the first failure."""
    checks: list[OutputCheck] = []
    failure: Optional[tuple[ErrorKind, str]] = None
    if len(outs) != len(refs):
        return checks, (ErrorKind.SHAPE, f"the candidate returned {len(outs)} outputs, the reference {len(refs)}")
    out_dtypes = list(out_dtypes or [str(o.dtype).replace("torch.", "") for o in outs])
    ref_dtypes = list(ref_dtypes or [str(r.dtype).replace("torch.", "") for r in refs])
    for i, (o, r) in enumerate(zip(outs, refs)):
        check = OutputCheck(index=i, shape=list(o.shape), dtype=out_dtypes[i])
        checks.append(check)
        problem = _compare_one(o, r, out_dtypes[i], ref_dtypes[i], tolerance(ref_dtypes[i]), check)
        if problem and failure is None:
            failure = (problem[0], f"output {i}: {problem[1]}")
    return checks, failure


def _namespace(x):
    """numpy for host arrays, torch for tensors (compared where they live, e.g. on the GPU: no host copy)."""
    if type(x).__module__.startswith("torch"):
        import torch

        return torch
    return np


def _f64(x, xp):
    return x.to(xp.float64) if xp is not np else np.asarray(x, dtype=np.float64)


def _size(x) -> int:
    return int(x.numel()) if callable(getattr(x, "numel", None)) else int(x.size)


def _compare_one(o, r, odt: str, rdt: str, tol: Tolerance, check: OutputCheck):
    def bad(kind: ErrorKind, text: str):
        check.ok, check.problem = False, text
        return kind, text

    if tuple(o.shape) != tuple(r.shape):
        return bad(ErrorKind.SHAPE, f"shape {tuple(o.shape)} but the reference has {tuple(r.shape)}")
    if odt.replace("torch.", "") != rdt.replace("torch.", ""):
        return bad(ErrorKind.DTYPE, f"dtype {odt} but the reference has {rdt}")
    xp = _namespace(o)
    if _namespace(r) is not xp:
        raise TypeError("compare_outputs needs outputs and references of one kind (numpy arrays or torch tensors)")
    o64, r64 = _f64(o, xp), _f64(r, xp)
    if _size(o64) == 0:
        return None
    shape = tuple(o64.shape)
    ref_finite = xp.isfinite(r64)
    out_bad = ~xp.isfinite(o64) & ref_finite
    if bool(out_bad.any()):
        idx = np.unravel_index(int(xp.argmax(out_bad.to(xp.uint8) if xp is not np else out_bad)), shape)
        return bad(ErrorKind.NAN_INF, f"NaN or Inf at index {tuple(int(x) for x in idx)} where the reference is finite")
    # Where the reference is NaN or +-Inf the output must be the same (NaN, or Inf of the same sign).
    off = ~ref_finite & ~((o64 == r64) | (xp.isnan(o64) & xp.isnan(r64)))
    if bool(off.any()):
        idx = np.unravel_index(int(xp.argmax(off.to(xp.uint8) if xp is not np else off)), shape)
        return bad(ErrorKind.VALUE, f"got {float(o64[idx]):.6g} at index {tuple(int(x) for x in idx)} where the "
                                    f"reference is {float(r64[idx]):.6g}")
    mask = ref_finite
    zeros = xp.zeros_like(o64)
    diff = xp.where(mask, abs(xp.where(mask, o64, zeros) - xp.where(mask, r64, zeros)), zeros)  # no inf - inf
    check.max_abs_error = float(diff.max())
    check.max_rel_error = float((diff / (xp.where(mask, abs(r64), zeros) + tol.atol)).max())
    allowed = tol.atol + tol.rtol * abs(r64)
    over = (diff > allowed) & mask
    if bool(over.any()):
        idx = np.unravel_index(int(xp.argmax(diff - allowed)), shape)
        at = tuple(int(x) for x in idx)
        return bad(
            ErrorKind.VALUE,
            f"{int(over.sum())} of {_size(o64)} values out of tolerance (atol={tol.atol:g}, rtol={tol.rtol:g}); "
            f"worst at {at}: got {float(o64[idx]):.6g}, expected {float(r64[idx]):.6g}",
        )
    finite_ref = r64[mask]
    scale = float(abs(finite_ref).max()) if _size(finite_ref) else 0.0
    if scale > 0 and check.max_abs_error > scale_rtol(tol) * scale:
        return bad(
            ErrorKind.VALUE,
            f"passes the absolute tolerance only because the reference is tiny: max error {check.max_abs_error:.3g} "
            f"is {check.max_abs_error / scale:.1%} of the reference's scale {scale:.3g}",
        )
    if _size(finite_ref) > 1:
        ref_span = float(finite_ref.max() - finite_ref.min())
        out_vals = o64[mask]
        if ref_span > scale_rtol(tol) * scale and float(out_vals.max() - out_vals.min()) == 0:
            return bad(ErrorKind.VALUE, "the output is constant while the reference varies")
    return None
