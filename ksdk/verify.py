"""The correctness policy shared by every backend: compare outputs with the reference on the host.

Beyond allclose it rejects NaN/Inf, wrong shapes and dtypes, constant outputs where the reference varies,
and outputs that pass only because the reference is tiny (judged against the reference's own scale).
"""

from __future__ import annotations

import math
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
    chunk: Optional[int] = None,
) -> tuple[list[OutputCheck], Optional[tuple[ErrorKind, str]]]:
    """Compare each output with its reference (numpy arrays, or torch tensors on any one device), `chunk` elements
    at a time (the float64 temporaries stay that small; each element is read once); returns the per-output checks
    and the first failure."""
    checks: list[OutputCheck] = []
    failure: Optional[tuple[ErrorKind, str]] = None
    if len(outs) != len(refs):
        return checks, (ErrorKind.SHAPE, f"the candidate returned {len(outs)} outputs, the reference {len(refs)}")
    out_dtypes = list(out_dtypes or [str(o.dtype).replace("torch.", "") for o in outs])
    ref_dtypes = list(ref_dtypes or [str(r.dtype).replace("torch.", "") for r in refs])
    for i, (o, r) in enumerate(zip(outs, refs)):
        check = OutputCheck(index=i, shape=list(o.shape), dtype=out_dtypes[i])
        checks.append(check)
        problem = _compare_one(o, r, out_dtypes[i], ref_dtypes[i], tolerance(ref_dtypes[i]), check, chunk)
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


def _flat(x, xp):
    return x.reshape(-1) if xp is not np else np.ravel(x)


def _first(mask, xp) -> int:
    return int(xp.argmax(mask.to(xp.uint8) if xp is not np else mask))


class _Stats:
    """Running figures over the chunks of one output."""

    def __init__(self) -> None:
        self.max_abs = self.max_rel = 0.0
        self.over = 0
        self.worst: Optional[tuple[float, int, float, float]] = None  # (excess, index, got, expected)
        self.ref_absmax, self.ref_min, self.ref_max = 0.0, math.inf, -math.inf
        self.out_min, self.out_max = math.inf, -math.inf
        self.finite = 0


def _compare_one(o, r, odt: str, rdt: str, tol: Tolerance, check: OutputCheck, chunk: Optional[int]):
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
    n = _size(o)
    if n == 0:
        return None
    shape = tuple(o.shape)

    def at(k: int) -> tuple[int, ...]:
        return tuple(int(x) for x in np.unravel_index(k, shape))

    of, rf = _flat(o, xp), _flat(r, xp)
    step = max(1, chunk or n)
    st = _passing_on_device(of, rf, n, step, tol) if xp is not np else None
    if st is None:  # numpy, or a failure to describe: chunk by chunk, stopping at the first
        st = _Stats()
        problem = _chunks(of, rf, n, step, tol, xp, st, at, bad)
        if problem:
            return problem
    return _verdict(st, n, tol, check, at, bad)


def _passing_on_device(of, rf, n: int, step: int, tol: Tolerance) -> Optional[_Stats]:
    """The figures of a torch comparison that passes, accumulated on the tensors' device with one wait for it at
    the end (chunk by chunk a 6 GiB output waited ~1000 times and took ~0.3 s on an H100); None when any chunk
    has a non-finite mismatch or a value out of tolerance (the chunk loop then finds and describes it)."""
    import torch

    f64, inf = torch.float64, math.inf
    acc = torch.zeros(3, dtype=torch.int64, device=of.device)  # non-finite mismatches, values over, finite refs
    big = torch.tensor([0.0, 0.0, 0.0, -inf, -inf, -inf, -inf], dtype=f64, device=of.device)  # maxima: abs and
    # rel error, |ref|, ref, out; minima (negated): ref, out. fmax: a chunk's NaN maximum is skipped, as max() does
    for start in range(0, n, step):
        o64, r64 = of[start:start + step].to(f64), rf[start:start + step].to(f64)
        mask = torch.isfinite(r64)
        mismatch = (~torch.isfinite(o64) & mask) | (~mask & ~((o64 == r64) | (torch.isnan(o64) & torch.isnan(r64))))
        ro, oo = torch.where(mask, r64, 0.0), torch.where(mask, o64, 0.0)
        diff, rabs = (oo - ro).abs(), ro.abs()
        over = (diff > tol.atol + tol.rtol * rabs) & mask
        acc += torch.stack([mismatch.sum(), over.sum(), mask.sum()])
        torch.fmax(big, torch.stack([diff.max(), (diff / (rabs + tol.atol)).max(), rabs.max(),
                                        torch.where(mask, r64, -inf).max(), torch.where(mask, o64, -inf).max(),
                                        torch.where(mask, -r64, -inf).max(), torch.where(mask, -o64, -inf).max()]),
                      out=big)
        del o64, r64, mask, mismatch, ro, oo, diff, rabs, over
    (bad, over, finite), top = acc.tolist(), big.tolist()
    if bad or over:
        return None
    st = _Stats()
    st.max_abs, st.max_rel, st.ref_absmax, st.ref_max, st.out_max = top[:5]
    st.ref_min, st.out_min, st.finite = -top[5], -top[6], finite
    return st


def _chunks(of, rf, n: int, step: int, tol: Tolerance, xp, st: _Stats, at, bad):
    """Chunk by chunk, the first non-finite mismatch (returned, described), else the figures in `st`."""
    for start in range(0, n, step):
        o64, r64 = _f64(of[start:start + step], xp), _f64(rf[start:start + step], xp)
        ref_finite = xp.isfinite(r64)
        out_bad = ~xp.isfinite(o64) & ref_finite
        if bool(out_bad.any()):
            return bad(ErrorKind.NAN_INF, f"NaN or Inf at index {at(start + _first(out_bad, xp))} where the reference "
                                          "is finite")
        # Where the reference is NaN or +-Inf the output must be the same (NaN, or Inf of the same sign).
        off = ~ref_finite & ~((o64 == r64) | (xp.isnan(o64) & xp.isnan(r64)))
        if bool(off.any()):
            k = _first(off, xp)
            return bad(ErrorKind.VALUE, f"got {float(o64[k]):.6g} at index {at(start + k)} where the reference is "
                                        f"{float(r64[k]):.6g}")
        mask = ref_finite
        zeros = xp.zeros_like(o64)
        diff = xp.where(mask, abs(xp.where(mask, o64, zeros) - xp.where(mask, r64, zeros)), zeros)  # no inf - inf
        st.max_abs = max(st.max_abs, float(diff.max()))
        st.max_rel = max(st.max_rel, float((diff / (xp.where(mask, abs(r64), zeros) + tol.atol)).max()))
        allowed = tol.atol + tol.rtol * abs(xp.where(mask, r64, zeros))
        over = (diff > allowed) & mask
        count = int(over.sum())
        if count:
            st.over += count
            excess = xp.where(over, diff - allowed, zeros - 1.0)
            k = int(xp.argmax(excess))
            if st.worst is None or float(excess[k]) > st.worst[0]:
                st.worst = (float(excess[k]), start + k, float(o64[k]), float(r64[k]))
        fr, fo = r64[mask], o64[mask]
        if _size(fr):
            st.finite += _size(fr)
            st.ref_absmax = max(st.ref_absmax, float(abs(fr).max()))
            st.ref_min, st.ref_max = min(st.ref_min, float(fr.min())), max(st.ref_max, float(fr.max()))
            st.out_min, st.out_max = min(st.out_min, float(fo.min())), max(st.out_max, float(fo.max()))
        del o64, r64, diff, allowed, over, zeros
    return None


def _verdict(st: _Stats, n: int, tol: Tolerance, check: OutputCheck, at, bad):
    """The check's figures from `st`, and what is wrong with them (None when nothing is)."""
    check.max_abs_error, check.max_rel_error = st.max_abs, st.max_rel
    if st.over:
        _excess, k, got, expected = st.worst
        return bad(
            ErrorKind.VALUE,
            f"{st.over} of {n} values out of tolerance (atol={tol.atol:g}, rtol={tol.rtol:g}); "
            f"worst at {at(k)}: got {got:.6g}, expected {expected:.6g}",
        )
    scale = st.ref_absmax
    if scale > 0 and check.max_abs_error > scale_rtol(tol) * scale:
        return bad(
            ErrorKind.VALUE,
            f"passes the absolute tolerance only because the reference is tiny: max error {check.max_abs_error:.3g} "
            f"is {check.max_abs_error / scale:.1%} of the reference's scale {scale:.3g}",
        )
    if st.finite > 1:
        ref_span = st.ref_max - st.ref_min
        if ref_span > scale_rtol(tol) * scale and st.out_max - st.out_min == 0:
            return bad(ErrorKind.VALUE, "the output is constant while the reference varies")
    return None
