"""Where the reference is NaN or +-Inf the output must match it: such positions are not a free pass."""

import numpy as np
import pytest

from ksdk.models import ErrorKind, Tolerance
from ksdk.verify import compare_outputs

TOL = lambda _dtype: Tolerance(atol=1e-4, rtol=1e-4)  # noqa: E731
REF = np.array([1.0, 2.0, np.inf, -np.inf, np.nan, 3.0])


@pytest.mark.parametrize("xp", ["numpy", "torch"])
@pytest.mark.parametrize("index,value", [(2, 0.0), (3, np.inf), (3, np.nan), (4, 5.0)])
def test_output_differing_where_the_reference_is_not_finite_fails(xp, index, value):
    out = REF.copy()
    out[index] = value
    o, r = out, REF
    if xp == "torch":
        torch = pytest.importorskip("torch")
        o, r = torch.from_numpy(out), torch.from_numpy(REF)
    checks, failure = compare_outputs([o], [r], TOL)
    assert failure is not None and failure[0] == ErrorKind.VALUE and f"({index},)" in failure[1]
    assert not checks[0].ok


def test_matching_non_finite_values_pass_with_finite_error_numbers():
    checks, failure = compare_outputs([REF.copy()], [REF], TOL)
    assert failure is None and checks[0].ok
    assert np.isfinite(checks[0].max_rel_error) and np.isfinite(checks[0].max_abs_error)
