"""What Linux /proc tells the judge about a candidate's processes: who descends from whom, whether every thread is
stopped, and the CPU time they used. The containment's fallback when no cgroup can be made."""

from __future__ import annotations

import os
import time
from typing import Iterable, Optional

NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
STOPPED = (b"T", b"t", b"Z", b"X")


def stat_fields(stat: bytes) -> list[bytes]:
    """The fields of a /proc/PID/stat line after the command name (which may hold spaces and parentheses):
    state, ppid, ... (fields[k] is the line's field k + 3 in proc(5)'s numbering)."""
    return stat[stat.rfind(b")") + 2:].split()


def _stat(path: str) -> Optional[list[bytes]]:
    try:
        with open(path, "rb") as f:
            return stat_fields(f.read())
    except OSError:
        return None


def start_time(pid: int) -> Optional[bytes]:
    """When the process started (clock ticks since boot): with its pid, names it even once pids are reused."""
    fields = _stat(f"/proc/{pid}/stat")
    return fields[19] if fields and len(fields) > 19 else None


def ended(pid: int) -> bool:
    """True when the process is gone or a zombie (it exited; its parent has not reaped it yet)."""
    fields = _stat(f"/proc/{pid}/stat")
    return fields is None or fields[0] in (b"Z", b"X")


def groups(pids: Iterable[int]) -> set[int]:
    """The process groups of these processes (groups led by a process outside them included: pass only pids
    whose sessions hold nothing else, such as a sandbox's)."""
    out = set()
    for pid in pids:
        fields = _stat(f"/proc/{pid}/stat")
        if fields and int(fields[2]) > 1:
            out.add(int(fields[2]))
    return out - {os.getpgrp()}


def descendants(pid: int) -> list[int]:
    """The pids descending from `pid`."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(f"/proc/{entry}/stat")
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _threads(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def wait_stopped(pids: Iterable[int], deadline: float) -> None:
    """Wait until every thread of these processes is stopped or gone (SIGSTOP is delivered asynchronously), at
    most until `deadline` (monotonic)."""
    for pid in pids:
        for tid in _threads(pid):
            while time.monotonic() < deadline:
                fields = _stat(f"/proc/{pid}/task/{tid}/stat")
                if fields is None or fields[0] in STOPPED:
                    break
                time.sleep(0.0002)


def snapshot(pids: Iterable[int]) -> dict[int, tuple[bool, int]]:
    """Per process: (every thread stopped, the CPU time its live threads used in ns); a process that vanishes while
    read counts as not stopped."""
    out = {}
    for pid in sorted(pids):
        stopped, used = True, 0
        for tid in _threads(pid):
            fields = _stat(f"/proc/{pid}/task/{tid}/stat")
            stopped = stopped and fields is not None and fields[0] in STOPPED
            used += _schedstat(f"/proc/{pid}/task/{tid}/schedstat")
        out[pid] = (stopped and os.path.exists(f"/proc/{pid}"), used)
    return out


def cpu_ns(pids: Iterable[int]) -> int:
    """CPU time (ns) used by these processes: their live threads (to the ns), threads that exited and children they
    reaped (the kernel's thread-group totals, to the clock tick). Children reaped by a process outside `pids`, and
    processes that left them, are missed."""
    total = 0
    for pid in pids:
        fields = _stat(f"/proc/{pid}/stat")
        if fields is None or len(fields) < 15:
            continue
        live = sum(_schedstat(f"/proc/{pid}/task/{tid}/schedstat") for tid in _threads(pid))
        group, children = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
        total += max(live, group * NS_PER_TICK) + children * NS_PER_TICK
    return total


def thread_cpu(pids: Iterable[int]) -> dict[str, int]:
    """CPU time (ns) of these processes' live threads, summed by thread name (a record of which threads ran; the
    names are the processes' own, so nothing is decided by them)."""
    out: dict[str, int] = {}
    for pid in pids:
        for tid in _threads(pid):
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    name = f.read().strip()[:32]
            except OSError:
                continue
            out[name] = out.get(name, 0) + _schedstat(f"/proc/{pid}/task/{tid}/schedstat")
    return out


def _schedstat(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
