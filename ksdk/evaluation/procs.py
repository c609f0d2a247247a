"""Process plumbing shared by the evaluator's driver and the judge: process-wide thread pools, the one thread that
forks long-lived children, and how to name the way a process ended."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor

_POOLS: dict[str, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def pool(name: str, threads: int) -> ThreadPoolExecutor:
    """The process-wide thread pool `name`, made on first use; it lives as long as the process."""
    with _POOLS_LOCK:
        if name not in _POOLS:
            _POOLS[name] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        return _POOLS[name]


def spawner() -> ThreadPoolExecutor:
    """The one thread that forks judge and candidate processes: Linux ties a child's parent-death signal to the
    thread that forked it, and a short-lived thread's exit would kill the child."""
    return pool("ksdk-worker-spawner", 1)


def signal_name(code: int, sandboxed: bool = False) -> str:
    """How a process ended: a signal's name, or its exit code (bwrap reports a child's signal N as 128 + N)."""
    if sandboxed and 128 < code < 160:
        code = -(code - 128)
    try:
        return signal.Signals(-code).name if code < 0 else f"exit code {code}"
    except ValueError:
        return f"signal {-code}"
