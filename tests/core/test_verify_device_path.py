"""Torch comparisons that pass are summed up on the tensors' device with one wait at the end (chunk by chunk, a 6 GiB
output waited about a thousand times and took ~0.3 s a check on an H100); every verdict, message and figure must be
the one the chunk-by-chunk comparison gives (numpy arrays still take it: the reference here)."""

import numpy as np
import pytest

from ksdk.models import Tolerance
from ksdk.verify import compare_outputs

torch = pytest.importorskip("torch")
TOL = {"float32": Tolerance(atol=1e-4, rtol=1e-4), "float16": Tolerance(atol=1e-2, rtol=1e-2),
       "float64": Tolerance(atol=0.0, rtol=1e-6)}


def cases():
    rng = np.random.default_rng(7)
    ref = rng.standard_normal(1000)
    yield "close", ref, ref * (1 + 1e-6)
    far = ref.copy()
    far[[5, 700]] += 1.0
    yield "two over", ref, far
    nan_out = ref.copy()
    nan_out[333] = np.nan
    yield "nan where finite", ref, nan_out
    special = ref.copy()
    special[[1, 2, 3]] = [np.inf, -np.inf, np.nan]
    yield "non-finite matched", special, special.copy()
    inf_off = special.copy()
    inf_off[1] = 5.0
    yield "inf not matched", special, inf_off
    yield "zeros against zeros", np.zeros(64), np.zeros(64)
    tiny = ref * 1e-9
    yield "tiny reference", tiny, tiny + 5e-5
    yield "constant output", ref, np.full_like(ref, float(np.median(ref)))
    yield "all non-finite", np.full(10, np.nan), np.full(10, np.nan)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
@pytest.mark.parametrize("chunk", [None, 7, 128])
def test_the_device_path_gives_the_chunk_loops_verdicts_and_figures(dtype, chunk):
    tol = lambda _d: TOL[dtype]  # noqa: E731
    for name, ref, out in cases():
        r, o = ref.astype(dtype), out.astype(dtype)
        want_checks, want = compare_outputs([o], [r], tol, chunk=chunk)
        got_checks, got = compare_outputs([torch.from_numpy(o)], [torch.from_numpy(r)], tol, chunk=chunk)
        assert got == want, (name, dtype, chunk)
        w, g = want_checks[0], got_checks[0]
        assert (g.ok, g.problem) == (w.ok, w.problem), (name, dtype, chunk)
        if w.ok:
            assert g.max_abs_error == pytest.approx(w.max_abs_error, rel=1e-12, abs=0), name
            assert g.max_rel_error == pytest.approx(w.max_rel_error, rel=1e-12, abs=0), name


def test_a_passing_torch_comparison_never_takes_the_chunk_loop(monkeypatch):
    import ksdk.verify as verify

    def loop(*a, **k):
        raise AssertionError("the chunk loop ran for a passing torch comparison")

    monkeypatch.setattr(verify, "_chunks", loop)
    ref = torch.linspace(-3, 3, 10_000)
    checks, failure = compare_outputs([ref * (1 + 1e-7)], [ref], lambda _d: TOL["float32"], chunk=1000)
    assert failure is None and checks[0].ok and 0 < checks[0].max_abs_error < 1e-5
