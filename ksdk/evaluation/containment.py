"""A box around one candidate's processes: freeze them all at once, thaw them, count the CPU time they used (threads
and children that are gone included), cap their memory (files in RAM-backed folders included) and end them.

Each role takes the best mechanism that works here: cgroup v2 (cgroup.freeze, cpu.stat, memory.max), then cgroup v1
(the freezer, cpuacct and memory hierarchies), then signals and /proc (a stop loop; thread-group totals; no memory
cap beyond the sandbox's RLIMIT_DATA and sized tmpfs mounts). KSDK_CONTAINMENT (auto, cgroup2, cgroup1, signals)
restricts the choice; `status()` says which guarantee is weaker and how to get it.

Layout: <base>/ksdk-<judge pid>-<name>/ is frozen, limited and accounted; the processes live in its run/ folder,
which they enter between fork and exec (before the sandbox starts). The sandbox's cgroup namespace begins at run/:
nothing inside can see, let alone write, the folder that holds the freeze and the limit.
"""

from __future__ import annotations

import atexit
import functools
import glob
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Optional

from ksdk.evaluation import cgroups, procfs
from ksdk.evaluation.procfs import descendants
from ksdk.models import Model

CONTAINMENT_ENV = "KSDK_CONTAINMENT"
MODES = ("auto", "cgroup2", "cgroup1", "signals")
FREEZE_TIMEOUT_S = 5.0  # a box whose processes do not all stop by then is a ContainmentError (the judge ends it)
CLOSE_TIMEOUT_S = 5.0
HOW = ("run the judge as root, or inside a delegated cgroup2 subtree "
       "(systemd-run --user --scope -p Delegate=yes <command>)")
__all__ = ["Box", "ContainmentError", "ContainmentStatus", "descendants", "make_box", "remove_boxes", "status"]


class ContainmentError(RuntimeError):
    """The box could not be made, or its processes could not all be stopped in time."""


class ContainmentStatus(Model):
    """Which mechanism each role uses here, which guarantees hold, and for each weaker one what to do about it."""

    mode: str
    freezer: str  # cgroup2, cgroup1 or signals
    cpu: str  # cgroup2, cgroup1 or proc
    memory: str  # cgroup2, cgroup1 or none
    atomic_freeze: bool
    complete_cpu: bool
    memory_covers_tmpfs: bool
    weaker: list[str] = []

    def line(self) -> str:
        """One line for `ksdk backends` and for logs."""
        return f"containment: freeze by {self.freezer}, CPU time by {self.cpu}, memory limit by {self.memory}"


@dataclass(frozen=True)
class _Plan:
    """The mechanism of each role (None: signals and /proc, or no memory cap)."""

    mode: str
    freezer: Optional[cgroups.Hier]
    cpu: Optional[cgroups.Hier]
    memory: Optional[cgroups.Hier]


def mode() -> str:
    """KSDK_CONTAINMENT, checked."""
    value = os.environ.get(CONTAINMENT_ENV, "").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{CONTAINMENT_ENV}={value!r}: use one of {', '.join(MODES)}")
    return value


def make_box(name: str, memory_limit_bytes: Optional[int]) -> "Box":
    """A new, empty box for one candidate's processes (cgroup folders made now, removed by close())."""
    return Box(name, _plan(mode()), memory_limit_bytes)


def status() -> ContainmentStatus:
    """What containment candidates get here (probed once per process and mode)."""
    plan = _plan(mode())
    forced = f"unset {CONTAINMENT_ENV} (it is '{plan.mode}')" if plan.mode != "auto" else HOW
    weaker = []
    if plan.freezer is None:
        weaker.append("freeze: a stop loop (SIGSTOP until two passes find every process stopped and no CPU time "
                      f"moving), not atomic: processes that wake each other may slip through; fix: {forced}")
    if plan.cpu is None:
        weaker.append("CPU time: from /proc (threads that exited and children reaped count to the clock tick; "
                      f"processes that leave the sandbox's process tree are missed); fix: {forced}")
    if plan.memory is None:
        weaker.append("memory: a limit per process (RLIMIT_DATA) and a sized /dev/shm, no total over the candidate's "
                      "processes and files; fix: " + (forced if plan.mode != "auto" else
                                                      "enable the memory controller (cgroup2: +memory in the "
                                                      "cgroup.subtree_control above the judge's boxes; cgroup1: a "
                                                      "memory hierarchy) and " + HOW))
    name = {None: None, 1: "cgroup1", 2: "cgroup2"}
    return ContainmentStatus(mode=plan.mode, freezer=name[plan.freezer and plan.freezer.version] or "signals",
                             cpu=name[plan.cpu and plan.cpu.version] or "proc",
                             memory=name[plan.memory and plan.memory.version] or "none",
                             atomic_freeze=plan.freezer is not None, complete_cpu=plan.cpu is not None,
                             memory_covers_tmpfs=plan.memory is not None, weaker=weaker)


class Box:
    """The processes of one candidate. `enter()` runs in the child between fork and exec, `adopt(pid)` in the judge
    after it; then freeze/thaw/cpu_ns as often as needed, and close() (idempotent) ends them all."""

    def __init__(self, name: str, plan: _Plan, memory_limit_bytes: Optional[int]):
        self.plan, self.memory_limit_bytes = plan, memory_limit_bytes
        self.kind = {None: "signals", 1: "cgroup1", 2: "cgroup2"}[plan.freezer and plan.freezer.version]
        self._dirs: dict[cgroups.Hier, str] = {}
        self._root: Optional[tuple[int, bytes]] = None  # (pid, start time): pids are reused
        self._closed = False
        try:
            for h in dict.fromkeys(x for x in (plan.freezer, plan.cpu, plan.memory) if x is not None):
                outer = os.path.join(h.base, f"ksdk-{os.getpid()}-{name}")
                os.mkdir(outer)
                self._dirs[h] = outer
                os.mkdir(os.path.join(outer, "run"))
            if plan.memory is not None and memory_limit_bytes:
                cgroups.set_memory_limit(plan.memory.version, self._dirs[plan.memory], memory_limit_bytes)
        except OSError as e:
            self.close()
            raise ContainmentError(f"could not make the candidate's cgroup ({e}); set {CONTAINMENT_ENV}=signals "
                                   "to run with the weaker fallback") from e
        self._enter_files = [os.path.join(d, "run", "cgroup.procs") for d in self._dirs.values()]
        _OPEN.add(self)

    # -- the processes ---------------------------------------------------------------------------------------
    def enter(self) -> None:
        """Put the calling process into the box (in the child, between fork and exec: before any candidate code)."""
        pid = str(os.getpid()).encode()
        for path in self._enter_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def adopt(self, pid: int) -> None:
        """The box's first process, as the judge sees it (the signals fallback finds the others from it)."""
        self._root = (pid, procfs.start_time(pid) or b"")

    def pids(self) -> set[int]:
        """Every live process in the box."""
        found: set[int] = set()
        for outer in self._dirs.values():
            found |= cgroups.procs(outer)
        if self.plan.freezer is None and self._root is not None and \
                procfs.start_time(self._root[0]) == self._root[1]:
            found.update(p for p in (self._root[0], *descendants(self._root[0])) if not procfs.ended(p))
        return found

    # -- freezing --------------------------------------------------------------------------------------------
    def freeze(self) -> None:
        """Stop every process in the box and return once none runs; ContainmentError if that takes too long."""
        deadline = time.monotonic() + FREEZE_TIMEOUT_S
        if self.plan.freezer is None:
            return self._stop_loop(deadline)
        outer = self._dirs[self.plan.freezer]
        try:
            if self.plan.freezer.version == 2:
                cgroups.write(os.path.join(outer, "cgroup.freeze"), b"1")
                cgroups.wait_frozen_v2(os.path.join(outer, "cgroup.events"), deadline)
                return None
            cgroups.write(os.path.join(outer, "freezer.state"), b"FROZEN")
            cgroups.wait_frozen_v1(os.path.join(outer, "freezer.state"), deadline)
        except cgroups.FreezeTimeout:
            raise ContainmentError(f"its processes did not all stop within {FREEZE_TIMEOUT_S:g} s") from None
        return None

    def thaw(self) -> None:
        """Let the box's processes run again (nothing to do once it is closed)."""
        if not self._closed:
            self._thaw()

    def _thaw(self) -> None:
        if self.plan.freezer is None:
            for pid in self.pids():
                _signal(pid, signal.SIGCONT)
        elif self.plan.freezer.version == 2:
            cgroups.write(os.path.join(self._dirs[self.plan.freezer], "cgroup.freeze"), b"0")
        else:
            cgroups.write(os.path.join(self._dirs[self.plan.freezer], "freezer.state"), b"THAWED")

    def _stop_loop(self, deadline: float) -> None:
        """Signals only: SIGSTOP whatever runs, each process and each of their process groups (a group's signal
        also reaches the children being forked at that moment), until two passes in a row, each listing the
        processes afresh, find the same processes, every thread stopped and no thread's CPU time moved."""
        while True:
            pids = self.pids()
            for group in procfs.groups(pids):
                _signal(-group, signal.SIGSTOP)
            for pid in pids:
                _signal(pid, signal.SIGSTOP)
            procfs.wait_stopped(self.pids(), deadline)
            first = procfs.snapshot(self.pids())
            if all(stopped for stopped, _ in first.values()) and procfs.snapshot(self.pids()) == first:
                return
            if time.monotonic() > deadline:
                raise ContainmentError(f"its processes did not all stop within {FREEZE_TIMEOUT_S:g} s (processes "
                                       "kept waking each other)")

    # -- accounting ------------------------------------------------------------------------------------------
    def cpu_ns(self) -> int:
        """CPU time (ns) the box's processes used so far, including threads and children that are gone (the
        signals fallback: to the clock tick, and only for children reaped inside the box)."""
        if self.plan.cpu is None:
            return procfs.cpu_ns(self.pids())
        outer = self._dirs[self.plan.cpu]
        if self.plan.cpu.version == 2:
            return cgroups.stat_value(os.path.join(outer, "cpu.stat"), "usage_usec") * 1000
        return int(cgroups.read(os.path.join(outer, "cpuacct.usage")) or 0)

    def memory_peak_bytes(self) -> Optional[int]:
        """The most memory the box held at once (processes and the files they wrote to RAM), where known."""
        if self.plan.memory is None:
            return None
        outer = self._dirs[self.plan.memory]
        name = "memory.peak" if self.plan.memory.version == 2 else "memory.max_usage_in_bytes"
        raw = cgroups.read(os.path.join(outer, name)).strip()
        return int(raw) if raw.isdigit() else None

    def oom_kills(self) -> int:
        """How many of the box's processes the kernel ended for exceeding its memory limit."""
        if self.plan.memory is None:
            return 0
        outer = self._dirs[self.plan.memory]
        if self.plan.memory.version == 2:
            return cgroups.stat_value(os.path.join(outer, "memory.events"), "oom_kill")
        return sum(cgroups.stat_value(os.path.join(d, "memory.oom_control"), "oom_kill")
                   for d in (outer, os.path.join(outer, "run")))

    # -- ending ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Kill every process in the box and remove its cgroup folders. Idempotent."""
        if self._closed:
            return
        self._closed = True
        _OPEN.discard(self)
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        for outer in self._dirs.values():
            cgroups.end(outer, deadline)
        while self.plan.freezer is None and time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                _signal(pid, signal.SIGKILL)
                _signal(pid, signal.SIGCONT)  # a stopped process acts on SIGKILL once it runs
            time.sleep(0.005)


def remove_boxes(judge_pid: int) -> None:
    """End the processes and remove the cgroup folders of every box a judge left behind (one that was killed):
    for the judge's parent to call once the judge is gone."""
    deadline = time.monotonic() + CLOSE_TIMEOUT_S
    for h in cgroups.all_bases():
        for outer in glob.glob(os.path.join(glob.escape(h.base), f"ksdk-{judge_pid}-*")):
            cgroups.end(outer, deadline)


# -- probing ---------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _plan(mode: str) -> _Plan:
    """The mechanism for each role, probed once per mode: folders are made, tried and removed."""
    v2 = [] if mode in ("cgroup1", "signals") else [h for h in cgroups.bases("cgroup2", "") if cgroups.works_v2(h)]
    v1 = {} if mode in ("cgroup2", "signals") else {
        c: next((h for h in cgroups.bases("cgroup", c) if cgroups.works_v1(h, c)), None)
        for c in ("freezer", "cpuacct", "memory")}
    v2_memory = next((h for h in v2 if "memory" in cgroups.read(os.path.join(h.base, "cgroup.subtree_control"))
                      .decode().split()), None)
    v2_main = v2_memory or (v2[0] if v2 else None)
    plan = _Plan(mode=mode, freezer=v2_main or v1.get("freezer"), cpu=v2_main or v1.get("cpuacct"),
                 memory=v2_memory or v1.get("memory"))
    for h in {plan.freezer, plan.cpu, plan.memory} - {None}:
        cgroups.sweep(h.base)
    return plan if _enters(plan) else _Plan(mode=mode, freezer=None, cpu=None, memory=None)


def _enters(plan: _Plan) -> bool:
    """Can a child of this process move itself into a box (write access to the cgroups above it, too)?"""
    if plan.freezer is None and plan.cpu is None and plan.memory is None:
        return True
    try:
        box = Box("probe", plan, None)
    except ContainmentError:
        return False
    try:
        child = subprocess.run([sys.executable, "-S", "-c", ""], preexec_fn=box.enter, timeout=60)
        return child.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        box.close()


_OPEN: set[Box] = set()  # boxes not closed yet: closed when the judge exits (a spare still starting, say)
atexit.register(lambda: [box.close() for box in list(_OPEN)])


def _signal(pid: int, sig: int) -> None:
    """Send a signal to a process that may be gone already."""
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
