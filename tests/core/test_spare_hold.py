"""A spare that is still starting (a process importing the toolchain) is stopped while a device timing runs
(`Pool.held`), goes on after it, and is not failed for the time it was held.

The spare is a real sandboxed cpu_c candidate process whose interpreter first runs a `sitecustomize` that counts in
a file of its scratch folder for a while: the start-up's CPU work, made visible.
"""

import mmap
import textwrap
import time
from pathlib import Path

from ksdk.evaluation import sandboxed
from ksdk.evaluation.sandbox_env import scrubbed_env
from ksdk.evaluation.sandboxed import sandbox_launch
from ksdk.evaluation.spares import Pool
from ksdk.interfaces.backend import RunContext
from ksdk.registry import load_backend

SLOW_START = """
import mmap, os, time
fd = os.open("/tmp/counter", os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, 8)
m = mmap.mmap(fd, 8)
n, end = 0, time.process_time() + {seconds}  # CPU seconds: a stopped process uses none
while time.process_time() < end:
    n += 1
    m[:8] = n.to_bytes(8, "little")
"""


def slow_pool(tmp_path: Path, seconds: float) -> Pool:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(SLOW_START.format(seconds=seconds)))
    cls = load_backend("cpu_c")
    env = scrubbed_env(cls.env_allowlist(), {"PYTHONPATH": str(site)})
    launch = sandbox_launch(cls, RunContext(device=0, interpret=False), env, unsandboxed=False)
    launch.readonly.append(str(site))
    return Pool(launch, spares=1)


def counter(proc) -> int:
    try:
        with open(proc.scratch / "counter", "rb") as f, mmap.mmap(f.fileno(), 8, access=mmap.ACCESS_READ) as m:
            return int.from_bytes(m[:8], "little")
    except (OSError, ValueError):  # not made yet
        return 0


def starting(pool: Pool):
    end = time.monotonic() + 60
    while True:
        procs = list(pool._starting)
        if procs and counter(procs[0]) > 0:
            return procs[0]
        assert time.monotonic() < end, "the spare never started counting"
        time.sleep(0.01)


def test_a_held_spare_does_not_run_and_starts_after(tmp_path, monkeypatch):
    # The start needs ~1.5 s here (1 s of counting and the imports; "process start" 0.36 s median in the README main
    # job), so 10 s leaves a busy 2-core machine over 5x; the hold outlasts the timeout.
    monkeypatch.setattr(sandboxed, "READY_TIMEOUT_S", 10.0)
    pool = slow_pool(tmp_path, seconds=1.0)
    try:
        proc = starting(pool)
        with pool.held():
            time.sleep(0.1)  # the freeze has returned: nothing of the box runs; let a last write land
            before = counter(proc)
            time.sleep(11.0)  # longer than the ready timeout: held time does not count against the start
            assert counter(proc) == before, "the spare kept running while held"
        ready = pool.take()  # the same process, started after all
        assert ready is proc and ready.alive and ready.held_s >= 11.0
        assert counter(proc) > before
        ready.close()
    finally:
        pool.close()


def test_a_spare_that_starts_during_a_hold_is_held_too(tmp_path):
    pool = slow_pool(tmp_path, seconds=30)  # not ready within the test: only whether it runs matters
    pool.close()  # the first spare goes; a fresh pool state with none
    pool._closed, pool.spares = False, 0
    try:
        with pool.held():
            pool.spares = 1
            pool._fill()  # a replacement started while a timing runs
            end = time.monotonic() + 30
            while not pool._starting:
                assert time.monotonic() < end, "the spare's process was never made"
                time.sleep(0.01)
            proc = next(iter(pool._starting))
            time.sleep(0.3)
            before = counter(proc)
            time.sleep(1.0)
            assert counter(proc) == before, "a spare started during the hold ran"
        starting(pool)  # and runs once the hold ends
    finally:
        pool.close()
        for proc in list(pool._starting):  # not left counting beside the next tests
            proc.kill()
