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
    """Compare each output with its reference; returns the per-output checks and the first failure."""
    checks: list[OutputCheck] = []
    failure: Optional[tuple[ErrorKind, str]] = None
    if len(outs) != len(refs):
        return checks, (ErrorKind.SHAPE, f"the candidate returned {len(outs)} outputs, the reference {len(refs)}")
    out_dtypes = list(out_dtypes or [str(o.dtype) for o in outs])
    ref_dtypes = list(ref_dtypes or [str(r.dtype) for r in refs])
    for i, (o, r) in enumerate(zip(outs, refs)):
        check = OutputCheck(index=i, shape=list(o.shape), dtype=out_dtypes[i])
        checks.append(check)
        problem = _compare_one(o, r, out_dtypes[i], ref_dtypes[i], tolerance(ref_dtypes[i]), check)
        if problem and failure is None:
            failure = (problem[0], f"output {i}: {problem[1]}")
    return checks, failure


def _compare_one(o, r, odt: str, rdt: str, tol: Tolerance, check: OutputCheck):
    def bad(kind: ErrorKind, text: str):
        check.ok, check.problem = False, text
        return kind, text

    if tuple(o.shape) != tuple(r.shape):
        return bad(ErrorKind.SHAPE, f"shape {tuple(o.shape)} but the reference has {tuple(r.shape)}")
    if odt.replace("torch.", "") != rdt.replace("torch.", ""):
        return bad(ErrorKind.DTYPE, f"dtype {odt} but the reference has {rdt}")
    o64 = np.asarray(o, dtype=np.float64) if o.dtype != np.bool_ else o.astype(np.float64)
    r64 = np.asarray(r, dtype=np.float64) if r.dtype != np.bool_ else r.astype(np.float64)
    if o64.size == 0:
        return None
    ref_finite = np.isfinite(r64)
    out_bad = ~np.isfinite(o64) & ref_finite
    if out_bad.any():
        idx = np.unravel_index(int(np.argmax(out_bad)), o64.shape)
        return bad(ErrorKind.NAN_INF, f"NaN or Inf at index {tuple(int(x) for x in idx)} where the reference is finite")
    mask = ref_finite
    diff = np.abs(o64 - r64)
    diff = np.where(mask, diff, 0.0)
    check.max_abs_error = float(diff.max())
    check.max_rel_error = float((diff / (np.abs(r64) + tol.atol)).max())
    allowed = tol.atol + tol.rtol * np.abs(r64)
    over = (diff > allowed) & mask
    if over.any():
        idx = np.unravel_index(int(np.argmax(diff - allowed)), o64.shape)
        at = tuple(int(x) for x in idx)
        return bad(
            ErrorKind.VALUE,
            f"{int(over.sum())} of {o64.size} values out of tolerance (atol={tol.atol:g}, rtol={tol.rtol:g}); "
            f"worst at {at}: got {o64[idx]:.6g}, expected {r64[idx]:.6g}",
        )
    finite_ref = r64[mask]
    scale = float(np.abs(finite_ref).max()) if finite_ref.size else 0.0
    if scale > 0 and check.max_abs_error > scale_rtol(tol) * scale:
        return bad(
            ErrorKind.VALUE,
            f"passes the absolute tolerance only because the reference is tiny: max error {check.max_abs_error:.3g} "
            f"is {check.max_abs_error / scale:.1%} of the reference's scale {scale:.3g}",
        )
    if finite_ref.size > 1 and np.ptp(finite_ref) > scale_rtol(tol) * scale and np.ptp(o64[mask]) == 0:
        return bad(ErrorKind.VALUE, "the output is constant while the reference varies")
    return None
