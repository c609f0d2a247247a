"""A candidate cannot hold memory past its limit through RAM-backed filesystems (/etc and /dev/shm in the sandbox are
tmpfs), nor grow a file of the judge's with what it prints."""

import os
import stat
import tempfile
import threading

from hostilekit import C_GOOD, c_task, c_with_python, evaluate

from ksdk.evaluation.containment import status as containment_status
from ksdk.evaluation.sandboxed import descendants
from ksdk.models import Status

# Fills /etc and /dev/shm of its sandbox, 64 MiB at a time, up to 1 GiB each, and reports what it got (without a
# leading slash: the judge cuts lines that name paths outside the sandbox's own files).
FILL = """
import os
held = {}
for where in ("etc", "dev/shm"):
    held[where] = 0
    try:
        with open(os.path.join("/", where, "fill"), "wb") as f:
            for _ in range(16):
                f.write(b"\\1" * (64 << 20))
                f.flush()
                held[where] += 64
    except OSError as e:
        held[where + " error"] = type(e).__name__
raise SystemExit("SAW " + repr(held))
"""


def test_filling_tmpfs_mounts_past_the_memory_limit_is_refused_or_ended(monkeypatch, containment):
    """Here the limit is 1 GiB. The box's cgroup counts files in RAM (the candidate is ended); without one, / and /dev
    are read-only and /dev/shm holds at most the limit."""
    monkeypatch.setenv("KSDK_MEMORY_LIMIT_BYTES", str(1 << 30))
    (r, after) = evaluate("cpu_c", c_task(), c_with_python(FILL), C_GOOD)
    assert r.status == Status.FAILED, r.message
    if containment_status().memory_covers_tmpfs:
        assert "used more than the sandbox's memory limit (1.0 GiB" in r.message, r.message
    else:
        held = eval(r.message.split("SAW ", 1)[1].splitlines()[0])  # the attack's own dict of ints and names
        assert held["etc"] == 0 and held["dev/shm"] <= 1024, held
    assert after.status == Status.OK, after.message


# Prints 256 MiB to stderr, then reports.
FLOOD = """
import os
chunk = b"x" * (1 << 20) + b"\\n"
for _ in range(256):
    os.write(2, chunk)
raise SystemExit("SAW flood done")
"""


def judges_files_max(stop: threading.Event, seen: list[int]) -> None:
    """Sizes of the regular files in the temporary folder (unlinked ones included: "/tmp/#123 (deleted)") held open
    for writing by this process or any process it started. (Shared memory, "/memfd:...", is the judge's input and
    output.)"""
    tmp = os.path.realpath(tempfile.gettempdir())
    while not stop.wait(0.02):
        for pid in [os.getpid(), *descendants(os.getpid())]:
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    st = os.stat(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and target.startswith(tmp + "/") and _writable(pid, fd):
                    seen.append(st.st_blocks * 512)


def _writable(pid: int, fd: str) -> bool:
    """Whether the descriptor was opened for writing (a shared library being loaded from a checkout under the
    temporary folder is open read-only, and never grows with what a candidate prints)."""
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            flags = next(int(line.split()[1], 8) for line in f if line.startswith("flags:"))
    except (OSError, StopIteration, ValueError):
        return False
    return flags & (os.O_WRONLY | os.O_RDWR) != 0


def test_a_flood_of_output_leaves_the_judges_disk_alone_and_the_verdict_arrives():
    stop, seen = threading.Event(), [0]
    watch = threading.Thread(target=judges_files_max, args=(stop, seen), daemon=True)
    watch.start()
    try:
        (r, after) = evaluate("cpu_c", c_task(), c_with_python(FLOOD), C_GOOD)
    finally:
        stop.set()
        watch.join()
    assert r.status == Status.FAILED and "SAW flood done" in r.message, r.message[-500:]
    assert max(seen) < 16 << 20, f"a file of {max(seen) >> 20} MiB grew with what the candidate printed"
    assert after.status == Status.OK, after.message
