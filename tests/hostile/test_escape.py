"""A candidate's process sees no other process, no network, none of the user's files, no secrets, cannot write
outside its scratch folder, and nothing it starts outlives its evaluation."""

import json
import os
import socket
import textwrap
import time

import pytest

from hostilekit import c_task, c_with_python, evaluate, report_line, sub, triton_good, triton_task
from processes import running

from ksdk.models import Status

SECRET = "sk-hostile-4f1c2a"

PROBE = textwrap.dedent(r'''
    import json, os, socket, subprocess
    seen = {"env_secret": [], "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
    for pid in seen["pids"]:
        try:
            if SECRET.encode() in open(f"/proc/{pid}/environ", "rb").read():
                seen["env_secret"].append(pid)
        except OSError:
            pass
    for name in ("home_file", "home_dir"):
        try:
            seen[name] = open(PATHS[name]).read()[:40] if name == "home_file" else os.listdir(PATHS[name])[:5]
        except OSError as e:
            seen[name] = type(e).__name__
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", PORT))
        seen["tcp"] = "connected"
    except OSError as e:
        seen["tcp"] = type(e).__name__
    try:
        socket.getaddrinfo("pypi.org", 443)
        seen["dns"] = "resolved"
    except OSError as e:
        seen["dns"] = type(e).__name__
    try:
        open(os.path.join(PATHS["package"], "ksdk_poison.py"), "w").write("x = 1")
        seen["wrote_package"] = True
    except OSError as e:
        seen["wrote_package"] = type(e).__name__
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", "7301"])
        os._exit(0)
    raise RuntimeError("SAW: " + json.dumps(seen))
''')


@pytest.fixture
def bait(tmp_path, monkeypatch):
    """A secret in the evaluator's environment, a secret file in a home folder, a listening port on loopback."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "secret.txt").write_text(SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("KSDK_TEST_HOSTILE_SECRET", SECRET)  # allowlisted by name (KSDK_*), yet never in a sandbox
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    import ksdk.models

    paths = {"home_file": str(home / "secret.txt"), "home_dir": str(home),
             "package": os.path.dirname(os.path.realpath(ksdk.models.__file__))}
    yield f"SECRET = {SECRET!r}\nPATHS = {paths!r}\nPORT = {server.getsockname()[1]}\n", home
    server.close()


def check(r, home):
    assert r.status == Status.FAILED, r.message
    seen = json.loads(report_line(r.message))
    assert seen["env_secret"] == [], "another process's environment (with a secret) was readable"
    assert SECRET not in r.message
    assert seen["home_file"] in ("FileNotFoundError", "PermissionError"), seen["home_file"]
    assert seen["home_dir"] in ("FileNotFoundError", "PermissionError"), seen["home_dir"]
    assert seen["tcp"] != "connected" and seen["dns"] != "resolved"
    assert seen["wrote_package"] is not True
    assert len(seen["pids"]) <= 4, f"other processes are visible: {seen['pids']}"
    for _ in range(100):  # the sandbox's PID namespace ended with the evaluation: bounded poll for the kill
        if not running("sleep 7301"):
            break
        time.sleep(0.05)
    assert not running("sleep 7301"), "a process the candidate started outlived its evaluation"
    assert not (home.parent / "ksdk_poison.py").exists()


def test_triton_candidate_probing_at_import_reaches_nothing(bait):
    prelude, home = bait
    src = sub(triton_good(), "class ModelNew", prelude + PROBE + "\n\nclass ModelNew")
    (r,) = evaluate("triton_nvidia", triton_task(), src)
    check(r, home)


# From native code the probe cannot raise into the harness: it makes the Runner's next call fail with its report.
REPORT_THROUGH_THE_RUNNER = """
try:
    exec(PROBE_CODE)
except RuntimeError as e:
    import ksdk_cpu_example.runner as r
    def report(self, *a, _m=str(e), **k):
        raise RuntimeError(_m)
    r.CpuCRunner.call = report
"""


def test_c_candidate_probing_from_native_code_reaches_nothing(bait):
    prelude, home = bait
    code = prelude + f"PROBE_CODE = {PROBE!r}\n" + REPORT_THROUGH_THE_RUNNER
    (r,) = evaluate("cpu_c", c_task(), c_with_python(code))
    check(r, home)


def test_a_fork_bomb_is_ended_and_leaves_nothing():
    bomb = ("import os, time\nfor i in range(3000):\n    try:\n        if os.fork() == 0:\n"
            "            os.execvp('sleep', ['sleep', '7302'])\n    except OSError:\n        break\n")
    (r, after) = evaluate("cpu_c", c_task(), c_with_python(bomb), __import__("hostilekit").C_GOOD)
    for _ in range(100):
        if not running("sleep 7302"):
            break
        time.sleep(0.05)
    assert not running("sleep 7302"), "processes of the fork bomb survived"
    assert after.status == Status.OK, after.message


def test_filling_the_disk_through_many_files_is_ended(monkeypatch):
    """RLIMIT_FSIZE binds one file: a candidate writing many files is ended by the judge's watch over its scratch
    folder (here at 16 MiB), and the next candidate runs."""
    monkeypatch.setenv("KSDK_SCRATCH_LIMIT_BYTES", str(16 << 20))
    fill = ("import os, tempfile, time\nfor i in range(64):\n"
            "    with open(os.path.join(tempfile.gettempdir(), f'fill{i}'), 'wb') as f:\n"
            "        f.write(os.urandom(1 << 20))\ntime.sleep(10)\n")
    (r, after) = evaluate("cpu_c", c_task(), c_with_python(fill), __import__("hostilekit").C_GOOD)
    assert r.status == Status.FAILED and "disk limit (16 MiB or 200,000 files)" in r.message, r.message
    assert after.status == Status.OK, after.message


def test_a_memory_bomb_is_refused_its_memory_and_the_next_candidate_runs(monkeypatch):
    """The candidate's private memory is limited (here to 1 GiB): asking for 3 GiB fails in its own process."""
    monkeypatch.setenv("KSDK_MEMORY_LIMIT_BYTES", str(1 << 30))
    bomb = ("try:\n    hog = bytearray(3 << 30)\n    got = 'GOT 3 GiB'\nexcept MemoryError:\n    got = 'REFUSED'\n"
            "raise SystemExit('SAW ' + got)\n")
    (r, after) = evaluate("cpu_c", c_task(), c_with_python(bomb), __import__("hostilekit").C_GOOD)
    assert r.status == Status.FAILED and "SAW REFUSED" in r.message, r.message
    assert after.status == Status.OK, after.message


def test_no_candidate_meets_an_earlier_ones_leftovers():
    """Patches, files, threads and Triton cache entries an earlier candidate left cannot reach the next one."""
    leave = sub(triton_good(), "class ModelNew", textwrap.dedent('''
        import os, threading, time
        torch.add = lambda *a, **k: "patched"
        open("/tmp/left_behind", "w").write("x")
        os.makedirs(os.environ["TRITON_CACHE_DIR"], exist_ok=True)
        open(os.path.join(os.environ["TRITON_CACHE_DIR"], "poison"), "w").write("x")
        threading.Thread(target=time.sleep, args=(3600,), daemon=True, name="leftover").start()
    ''') + "\n\nclass ModelNew")
    look = sub(triton_good(), "class ModelNew", textwrap.dedent('''
        import json, os, threading
        cache = os.environ["TRITON_CACHE_DIR"]
        seen = {"patched": torch.add is not torch._C._VariableFunctions.add,
                "file": os.path.exists("/tmp/left_behind"),
                "cache": os.path.exists(os.path.join(cache, "poison")),
                "thread": any(t.name == "leftover" for t in threading.enumerate())}
        raise RuntimeError("SAW: " + json.dumps(seen))
    ''') + "\n\nclass ModelNew")
    _first, second = evaluate("triton_nvidia", triton_task(), leave, look)
    seen = json.loads(report_line(second.message))
    assert seen == {"patched": False, "file": False, "cache": False, "thread": False}, seen
