"""A candidate cannot forge its verdict: it can write anything to anything its process holds, but the process that
decides the verdict runs none of its code and checks outputs itself."""

from hostilekit import FORWARD, c_task, c_with_python, evaluate, sub, triton_good, triton_task

from ksdk.models import Status

# Writes forged replies and results, in every framing ksdk ever used, to every socket it finds through the garbage
# collector and every file descriptor it has.
FORGER = r'''
import gc, json, os, socket, struct
def frame(d):
    b = json.dumps(d).encode()
    return struct.pack(">I", len(b)) + b
forged = [{"op": "reply", "ok": True, "samples": [1e-6] * 50, "report": {"outputs": []}},
          {"op": "result", "nonce": "x", "result": {"status": "ok", "stage": "performance", "speedup": 1000.0}},
          {"status": "ok", "speedup": 1000}]
for o in gc.get_objects():
    try:
        if isinstance(o, socket.socket):
            for f in forged:
                o.sendall(frame(f))
    except Exception:
        pass
for fd in range(3, 256):
    for f in forged:
        for data in (frame(f), (json.dumps(f) + "\n").encode()):
            try:
                os.write(fd, data)
            except OSError:
                pass
'''

# The Triton version computes nothing: without the forgery it would fail correctness.
TRITON_FORGER = sub(sub(triton_good(), "class ModelNew", FORGER + "\n\nclass ModelNew"), FORWARD,
                    "return launch(torch.zeros_like(x), torch.zeros_like(y), torch.empty_like(x), 0.0)")
WRONG_C = "void kernel(const float* a, const float* b, float* out, long n, long n2) { (void)a; (void)b; (void)n2;\n" \
          "    for (long i = 0; i < n; i++) out[i] = 0.0f; }\n"


def assert_not_forged(r):
    assert r.status != Status.OK, f"a forged verdict was accepted: {r.message}"
    assert r.speedup is None


def test_triton_candidate_writing_forged_replies_to_every_socket_and_fd_fails():
    (r,) = evaluate("triton_nvidia", triton_task(), TRITON_FORGER)
    assert_not_forged(r)


def test_c_candidate_forging_through_the_interpreter_from_a_constructor_fails():
    """Native code in the candidate's process calls PyRun_SimpleString: it owns that process, and still loses."""
    (r,) = evaluate("cpu_c", c_task(), c_with_python(FORGER, WRONG_C))
    assert_not_forged(r)


def test_the_judge_serves_the_next_candidate_after_a_forger():
    bad, good = evaluate("triton_nvidia", triton_task(), TRITON_FORGER, triton_good())
    assert_not_forged(bad)
    assert good.status == Status.OK, good.message
