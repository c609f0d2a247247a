"""The cgroup file systems (v2 and v1) as the judge uses them: where this process may make cgroups, whether a
hierarchy's freezer, CPU and memory files work, and small reads and writes of cgroup files."""

from __future__ import annotations

import atexit
import os
import signal
import time
from dataclasses import dataclass
from typing import Callable

SPIN_S = 0.002  # a freeze is waited for back to back this long before sleeping between checks


class FreezeTimeout(RuntimeError):
    """A cgroup did not report frozen by the deadline."""


@dataclass(frozen=True)
class Hier:
    """A cgroup hierarchy, and the folder in it where boxes are made."""

    version: int  # 2 or 1
    base: str


def bases(fstype: str, controller: str) -> list[Hier]:
    """Folders to make boxes in: below the judge's own cgroup, then the hierarchy's root (as root may)."""
    own: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                for c in ctrls.split(",") if ctrls else [""]:
                    own[c] = path
    except OSError:
        return []
    out: list[Hier] = []
    for point, fs, options in mounts():
        if fs != fstype or (controller and controller not in options):
            continue
        for base in (os.path.join(point, own.get(controller, "/").lstrip("/")), point):
            h = Hier(2 if fs == "cgroup2" else 1, os.path.normpath(base))
            if os.path.isdir(h.base) and h not in out:
                out.append(h)
    return out


def mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, super options) of the cgroup filesystems in /proc/self/mountinfo."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                pre, _, post = line.partition(" - ")
                fields, rest = pre.split(), post.split()
                if len(fields) > 4 and len(rest) >= 3 and rest[0] in ("cgroup", "cgroup2"):
                    point = fields[4].encode().decode("unicode_escape")  # mountinfo escapes spaces as \040
                    out.append((point, rest[0], set(rest[2].split(","))))
    except OSError:
        pass
    return out


def works_v2(h: Hier) -> bool:
    """Can this process make a cgroup in `h.base`, freeze it and read its CPU time? (A probe folder, removed.)"""
    probe = os.path.join(h.base, f"ksdk-{os.getpid()}-probe")
    try:
        os.mkdir(probe)
    except OSError:
        return False
    try:
        write(os.path.join(probe, "cgroup.freeze"), b"1")
        wait_frozen_v2(os.path.join(probe, "cgroup.events"), time.monotonic() + 1.0)
        write(os.path.join(probe, "cgroup.freeze"), b"0")
        return b"usage_usec" in read(os.path.join(probe, "cpu.stat"))
    except (OSError, FreezeTimeout):
        return False
    finally:
        remove(probe, time.monotonic() + 1.0)


def works_v1(h: Hier, controller: str) -> bool:
    """Can this process make a cgroup in `h.base` and use `controller` (freezer, cpuacct, memory) there?"""
    probe = os.path.join(h.base, f"ksdk-{os.getpid()}-probe")
    try:
        os.mkdir(probe)
    except OSError:
        return False
    try:
        if controller == "freezer":
            write(os.path.join(probe, "freezer.state"), b"FROZEN")
            ok = read(os.path.join(probe, "freezer.state")).strip() == b"FROZEN"
            write(os.path.join(probe, "freezer.state"), b"THAWED")
            return ok
        if controller == "cpuacct":
            return read(os.path.join(probe, "cpuacct.usage")).strip().isdigit()
        write(os.path.join(probe, "memory.limit_in_bytes"), str(1 << 40).encode())
        return True
    except OSError:
        return False
    finally:
        remove(probe, time.monotonic() + 1.0)


def set_memory_limit(version: int, outer: str, limit: int) -> None:
    """The box's memory limit; swap, where the kernel accounts it, gets none (swapped tmpfs would escape)."""
    if version == 2:
        write(os.path.join(outer, "memory.max"), str(limit).encode())
        write(os.path.join(outer, "memory.swap.max"), b"0", missing_ok=True)
        return
    write(os.path.join(outer, "memory.limit_in_bytes"), str(limit).encode())
    write(os.path.join(outer, "memory.memsw.limit_in_bytes"), str(limit).encode(), missing_ok=True)


def wait_frozen_v2(events: str, deadline: float) -> None:
    """Block until cgroup.events says 'frozen 1'. Polled (the kernel's change notification for cgroup files is
    rate-limited to one per 10 ms, too slow for a freeze around every request): see `_poll`."""
    fd = os.open(events, os.O_RDONLY)
    try:
        _poll(lambda: b"frozen 1" in os.pread(fd, 512, 0), deadline, 0.001)
    finally:
        os.close(fd)


def wait_frozen_v1(state: str, deadline: float) -> None:
    """Block until freezer.state says FROZEN (each read makes the kernel retry the tasks still freezing)."""
    _poll(lambda: read(state).strip() == b"FROZEN", deadline, 0.002)


def _poll(done: Callable[[], bool], deadline: float, longest: float) -> None:
    """Until `done()`: checked back to back (yielding the CPU) for SPIN_S, then with sleeps doubling up to `longest`
    seconds. The judge's clock counts a batch until its processes are frozen, so the freeze is seen when it happens:
    sleeps of 50 us and up added 0.05-0.2 ms that depended on how long the freeze took, not on the batch."""
    spin_until = time.monotonic() + SPIN_S
    pause = 0.00005
    while not done():
        now = time.monotonic()
        if now > deadline:
            raise FreezeTimeout("not every process of the cgroup stopped in time")
        if now < spin_until:
            os.sched_yield()
            continue
        time.sleep(pause)
        pause = min(pause * 2, longest)


def write(path: str, data: bytes, missing_ok: bool = False) -> None:
    """One write(2) of `data` to a cgroup file (as the kernel expects)."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read(path: str) -> bytes:
    """A cgroup file's content; empty when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def stat_value(path: str, key: str) -> int:
    """A value from a 'key value' file (cpu.stat, memory.events, memory.oom_control); 0 when absent."""
    for line in read(path).decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return 0


def all_bases() -> list[Hier]:
    """Every folder boxes may be made in here (the v2 hierarchy's and the freezer, cpuacct and memory ones')."""
    out = bases("cgroup2", "")
    for controller in ("freezer", "cpuacct", "memory"):
        out += [h for h in bases("cgroup", controller) if h not in out]
    return out


def procs(outer: str) -> set[int]:
    """The processes in a cgroup folder and the folders below it."""
    found: set[int] = set()
    for folder, _subdirs, _files in os.walk(outer):
        try:
            with open(os.path.join(folder, "cgroup.procs")) as f:
                found.update(int(x) for x in f.read().split())
        except (OSError, ValueError):
            pass
    return found


def end(outer: str, deadline: float) -> None:
    """Kill every process in a cgroup folder's tree (cgroup.kill where v2 has it; SIGKILL and a thaw otherwise: a
    v1-frozen process acts on SIGKILL only once thawed) and remove the folders."""
    _try_write(os.path.join(outer, "cgroup.kill"), b"1")
    while time.monotonic() < deadline:
        pids = procs(outer)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        _try_write(os.path.join(outer, "freezer.state"), b"THAWED")
        _try_write(os.path.join(outer, "cgroup.freeze"), b"0")
        time.sleep(0.005)
    remove(outer, deadline + 2.0)


def _try_write(path: str, data: bytes) -> None:
    try:
        write(path, data)
    except OSError:  # no such file in this hierarchy, or the folder is gone
        pass


def remove(outer: str, deadline: float) -> None:
    """Remove a cgroup folder and those inside it, deepest first, retrying while exiting processes leave; what is
    still there at the deadline is tried again when the judge exits."""
    while not _rmdirs(outer):
        if time.monotonic() > deadline:
            if not _LEFT:
                atexit.register(lambda: [_rmdirs(d) for d in _LEFT])
            _LEFT.append(outer)
            return
        time.sleep(0.01)


def _rmdirs(outer: str) -> bool:
    """One pass of rmdir over a cgroup folder's tree, deepest first; True when none is left."""
    busy = False
    for folder, _subdirs, _files in sorted(os.walk(outer), key=lambda w: -w[0].count(os.sep)):
        try:
            os.rmdir(folder)
        except FileNotFoundError:
            pass
        except OSError:
            busy = True
    return not busy


def sweep(base: str, min_age_s: float = 60.0) -> None:
    """Remove the empty boxes of judges that are gone (named ksdk-PID-...; left by a judge that was killed), once
    they are older than `min_age_s` (a judge in another PID namespace may have just made one)."""
    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    for e in entries:
        parts = e.name.split("-")
        if len(parts) < 3 or parts[0] != "ksdk" or not parts[1].isdigit() or int(parts[1]) == os.getpid():
            continue
        try:
            os.kill(int(parts[1]), 0)
            continue  # its judge lives (or its pid was reused): not ours to touch
        except ProcessLookupError:
            pass
        except OSError:
            continue
        try:
            if time.time() - e.stat().st_mtime > min_age_s:
                _rmdirs(e.path)
        except OSError:
            pass


_LEFT: list[str] = []  # cgroup folders a box could not remove in time
