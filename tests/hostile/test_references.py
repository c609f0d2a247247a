"""A candidate cannot read the reference outputs: they exist only in the judge's process."""

from hostilekit import FORWARD, evaluate, sub, triton_good, triton_task

from ksdk.models import ErrorKind, Status

# Computes nothing: returns any tensor of the right shape it can find that is not its own input (a reference or
# an earlier trial's output would do), walking the garbage collector and every stack frame.
THIEF = sub(triton_good(), "class ModelNew", '''
import gc, sys


def steal(x, y):
    seen = [o for o in gc.get_objects() if type(o) in (torch.Tensor, torch.nn.Parameter) and o.shape == x.shape
            and o.data_ptr() not in (x.data_ptr(), y.data_ptr())]
    frame = sys._getframe().f_back  # every caller's locals (the harness's too)
    while frame is not None:
        for v in frame.f_locals.values():
            for t in list(v) if isinstance(v, (list, tuple)) else [v]:
                if isinstance(t, torch.Tensor) and t.shape == x.shape and t.data_ptr() != x.data_ptr():
                    seen.append(t)
        frame = frame.f_back
    return seen


class ModelNew''')
THIEF = sub(THIEF, FORWARD, '''found = steal(x, y)  # copied out by a Triton kernel, so only the values can tell
        source = found[-1] if found else torch.zeros_like(x)
        return launch(source, torch.zeros_like(x), torch.empty_like(x), 1.0)''')


def test_a_candidate_searching_its_process_for_references_finds_none():
    (r,) = evaluate("triton_nvidia", triton_task(), THIEF)
    assert r.status == Status.FAILED and r.error_kind in (ErrorKind.VALUE, ErrorKind.NAN_INF), r.message
