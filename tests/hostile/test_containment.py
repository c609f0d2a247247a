"""A candidate's processes stay stopped while the judge works alone, and the CPU time they use is counted in full.

The attacks run in a real candidate's process (the cpu_c backend's, sandboxed), started with a `sitecustomize` that
the interpreter runs before anything else: children that wake the stopped main process (held-out candidates beat a
one-shot SIGSTOP this way), and work done in threads and children that are gone before the judge reads the clock
(a held-out candidate got 3213x). Each test runs with the containment this machine offers and with the signals
fallback (KSDK_CONTAINMENT=signals).
"""

import mmap
import textwrap
import time
from pathlib import Path


from ksdk.evaluation.sandbox_env import scrubbed_env
from ksdk.evaluation.sandboxed import CandidateProcess, sandbox_launch
from ksdk.interfaces.backend import RunContext
from ksdk.registry import load_backend


def start(tmp_path: Path, attack: str) -> CandidateProcess:
    """A ready cpu_c candidate process, sandboxed, whose interpreter ran `attack` first."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(attack))
    cls = load_backend("cpu_c")
    env = scrubbed_env(cls.env_allowlist(), {"PYTHONPATH": str(site)})
    launch = sandbox_launch(cls, RunContext(device=0, interpret=False), env, unsandboxed=False)
    launch.readonly.append(str(site))
    return CandidateProcess(launch).wait_ready()


def counter(proc: CandidateProcess) -> int:
    """The attack's counter: 8 bytes in a file of its scratch folder (its /tmp) that it maps and bumps."""
    with open(proc.scratch / "counter", "rb") as f:
        with mmap.mmap(f.fileno(), 8, access=mmap.ACCESS_READ) as m:
            return int.from_bytes(m[:8], "little")


def wait_for(cond, what: str, timeout: float = 60.0) -> None:
    """Bounded poll (a condition the candidate's process brings about, not a timing)."""
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)


# A thread bumps a counter in shared memory; another forks, again and again, children that SIGCONT the main process
# at once and exit (the held-out candidate used clone(CLONE_VM | CLONE_PARENT); any short-lived child will do).
WAKER = """
import mmap, os, signal, threading, time
fd = os.open("/tmp/counter", os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, 8)
m = mmap.mmap(fd, 8)
main = os.getpid()
def count():
    n = 0
    while True:
        n += 1
        m[0:8] = n.to_bytes(8, "little")
        time.sleep(0.0002)
def wake():
    while True:
        pid = os.fork()
        if pid == 0:
            os.kill(main, signal.SIGCONT)
            os._exit(0)
        os.waitpid(pid, 0)
threading.Thread(target=count, daemon=True).start()
threading.Thread(target=wake, daemon=True).start()
"""


def test_children_that_wake_the_stopped_main_process_cannot_undo_a_freeze(tmp_path, containment):
    proc = start(tmp_path, WAKER)
    try:
        wait_for(lambda: counter(proc) > 0, "the attack's counter")
        for _ in range(10):  # 10 freezes of 30 ms: not once may the counter move
            proc.freeze()
            before = counter(proc)
            time.sleep(0.03)
            assert counter(proc) == before, "the candidate ran while the judge had it frozen"
            proc.thaw()
            wait_for(lambda b=before: counter(proc) != b, "the thawed candidate to run again")
    finally:
        proc.close()


# Waits for the judge's go (a file in its /tmp), then burns CPU in threads it joins and in children that exit, and
# reports the CPU time they measured themselves (the kernel's per-thread clock: not inflated by a busy machine).
BURNER = """
import os, threading, time
def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
def attack():
    while not os.path.exists("/tmp/go"):
        time.sleep(0.01)
    used = 0.0
    for _ in range(3):
        t = threading.Thread(target=burn, args=(0.1,))
        t.start()
        t.join()
        used += 0.1
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            burn(0.1)
            os._exit(0)
        os.waitpid(pid, 0)
        used += 0.1
    with open("/tmp/done.tmp", "w") as f:
        f.write(repr(used))
    os.rename("/tmp/done.tmp", "/tmp/done")
threading.Thread(target=attack, daemon=True).start()
"""


def test_cpu_time_of_threads_and_children_that_are_gone_is_counted(tmp_path, containment):
    proc = start(tmp_path, BURNER)
    try:
        before = proc.cpu_ns()
        (proc.scratch / "go").touch()
        wait_for(lambda: (proc.scratch / "done").exists(), "the attack to finish")
        used_s = float((proc.scratch / "done").read_text())
        counted_s = (proc.cpu_ns() - before) / 1e9
        # the signals fallback counts exited threads and children in clock ticks (10 ms each, rounded down)
        assert counted_s >= used_s - 0.1, f"{used_s:.2f} s of CPU used, {counted_s:.2f} s counted"
    finally:
        proc.close()


# Each call's work runs in a new thread that the call joins: all of it is done before the call returns. The calling
# thread does a sliver itself, so that the CPU time of the live threads grows a little (a figure of zero is ignored).
# From inside the sandbox: any cgroup file it can open for writing, and whether it can make a user namespace of its
# own (with one, it could mount a cgroup file system of its own and write to it).
REACH = r"""
import ctypes, json, os
seen = {"writable": []}
for root, dirs, files in os.walk("/sys/fs/cgroup"):
    for name in files:
        if name in ("cgroup.freeze", "cgroup.procs", "cgroup.kill", "freezer.state", "memory.max",
                    "memory.limit_in_bytes"):
            try:
                os.close(os.open(os.path.join(root, name), os.O_WRONLY))
                seen["writable"].append(os.path.join(root, name))
            except OSError:
                pass
libc = ctypes.CDLL(None, use_errno=True)
ok = libc.unshare(0x10000000 | 0x00020000 | 0x02000000) == 0  # a user, mount and cgroup namespace
seen["userns"] = ok
if ok:
    os.makedirs("/tmp/cg", exist_ok=True)
    seen["mounted"] = libc.mount(b"none", b"/tmp/cg", b"cgroup", 0, b"freezer") == 0
print(json.dumps(seen))
"""


def test_nothing_in_the_sandbox_can_write_a_cgroup_or_mount_one(tmp_path):
    """The box's freeze and limit sit above the sandbox's cgroup namespace, and /sys is read-only; with no user
    namespace of its own, a candidate cannot mount a writable cgroup file system either."""
    import json
    import subprocess
    import sys

    from ksdk.evaluation import sandbox

    scratch = sandbox.make_scratch()
    try:
        cmd = sandbox.command([sys.executable, "-c", REACH], sandbox.Spec(scratch=scratch))
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        sandbox.remove_scratch(scratch)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"writable": [], "userns": False}, seen
