"""Nothing a candidate's process sends can break the judge or buy it time: frames are bounded in size and depth,
anything malformed is a crash verdict (tests/core/test_worker_protocol.py plays those), and deadlines only move
forward, within a hard limit for the whole evaluation."""

import time

from hostilekit import c_task, c_with_python, evaluate

from ksdk.models import ErrorKind, Stage, StageTimeouts

# A kernel that never returns, while a thread in the same process (cffi releases the GIL during the call) tells
# the judge, over and over, that a compilation starts and ends, or starts and never ends.
SPIN = "void kernel(const float* a, const float* b, float* out, long n, long n2) {\n" \
       "    (void)a; (void)b; (void)out; (void)n; (void)n2; for (volatile long i = 0;; i++) {} }\n"
SPAM = '''
import gc, json, struct, threading, time
def frame(d):
    b = json.dumps(d).encode()
    return struct.pack(">I", len(b)) + b
def spam():
    sock = next(o for o in gc.get_objects() if type(o).__name__ == "Harness").sock
    while True:
        sock.sendall(frame({"op": "progress", "compiling": True}))
        time.sleep(0.05)
        if MODE == "flap":
            sock.sendall(frame({"op": "progress", "compiling": False}))
threading.Thread(target=spam, daemon=True).start()
'''


def test_claimed_compilation_cannot_extend_a_deadline_past_the_compile_limit():
    task = c_task(timeouts=StageTimeouts(load=30, compile=3, correctness=2, performance=30))
    for mode in ("flap", "forever"):
        t = time.monotonic()
        (r,) = evaluate("cpu_c", task, c_with_python(f"MODE = {mode!r}\n" + SPAM, SPIN))
        wall = time.monotonic() - t
        assert (r.error_kind, r.stage) == (ErrorKind.TIMEOUT, Stage.CORRECTNESS), (mode, r.message)
        # The correctness stage alone (start-up, loading and the reference, which a busy machine slows, are not in
        # it): its 2 s, plus at most the compile limit's 3 s that compilation could claim, plus 3 s for the judge to
        # wake at the deadline and end the process on a loaded machine (a quiet one needs well under 0.1 s). Without
        # that limit the claims would hold the stage open to the evaluation's hard limit (`wall < 30` below).
        assert r.stages["correctness"] < 2 + 3 + 3, (mode, r.stages)
        assert wall < 30
