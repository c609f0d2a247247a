"""The judge's handle on candidates' processes: start them in the sandbox (ahead of need: ksdk.evaluation.spares),
talk to them with deadlines that only move forward, and end them with everything they started.

A candidate's process serves exactly one candidate: it is started fresh (before any candidate code runs in it)
and killed after its evaluation, so no candidate meets another's patches, threads, files or caches.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from ksdk.evaluation import containment, frames, sandbox
from ksdk.evaluation.output import OutputTail
from ksdk.evaluation.procfs import descendants, thread_cpu
from ksdk.evaluation.procs import signal_name as _signal_name
from ksdk.evaluation.procs import spawner as _spawner
from ksdk.evaluation.protocol import RUNNER_FD_ENV as FD_ENV

READY_TIMEOUT_S = 180.0
WATCH_S = 0.2  # how often the judge checks a candidate's process count while it waits
SPIN_S = 0.5  # a timed request's reply is polled for back to back this long (frames._spin says why), then waited for
DISK_WATCH_S = 1.0  # how often it checks the candidate's scratch folder's size


class StartError(RuntimeError):
    """A candidate's process could not start (an installation problem, before any candidate code ran)."""


class Died(Exception):
    """The candidate's process ended while the judge waited for it."""

    def __init__(self, how: str, log: str):
        super().__init__(how)
        self.how, self.log = how, log


class Overrun(Exception):
    """A limit of the sandbox was exceeded (processes, disk), or its processes could not be stopped, so the judge
    ended it."""


@dataclass
class Launch:
    """How to start candidate processes for one backend on one device."""

    backend: str
    device: int
    interpret: bool
    env: dict[str, str]
    sandboxed: bool
    readonly: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)


class CandidateProcess:
    """One started candidate process (sandboxed unless the user opted out), ready to serve one candidate. Its
    processes live in a containment box (cgroups where possible) and print into a bounded tail."""

    def __init__(self, launch: Launch):
        self.launch = launch
        self.scratch = sandbox.make_scratch()
        try:
            self.box = containment.make_box(self.scratch.name, launch.limits.data_bytes)
        except (containment.ContainmentError, ValueError) as e:
            sandbox.remove_scratch(self.scratch)
            raise StartError(f"a candidate process could not start: {e}") from None
        self.output = OutputTail()
        judge_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = judge_end
        self.reader = frames.Reader(judge_end)
        argv = [sys.executable, "-m", "ksdk.evaluation.candidate", launch.backend, str(launch.device)]
        if launch.interpret:
            argv.append("--interpret")
        env = dict(launch.env)
        env.update({FD_ENV: str(child_end.fileno()), "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
                    "TRITON_CACHE_DIR": "/tmp/.triton" if launch.sandboxed else str(self.scratch / ".triton")})
        if launch.sandboxed:
            cmd = sandbox.command(argv, sandbox.Spec(scratch=self.scratch, readonly=launch.readonly,
                                                     devices=launch.devices, limits=launch.limits))
        else:
            cmd = argv
            env.update({"HOME": str(self.scratch), "TMPDIR": str(self.scratch)})
        # Forked from the one long-lived spawner thread: the parent-death signal (bwrap --die-with-parent) is tied
        # to the thread that forks, and a short-lived thread's exit would kill the process.
        limits, box = launch.limits, self.box

        def preexec() -> None:  # in the child, between fork and exec: limits, then into the box
            limits.apply()
            box.enter()

        try:
            self.proc: subprocess.Popen = _spawner().submit(
                subprocess.Popen, cmd, env=env, stdin=subprocess.DEVNULL, stdout=self.output.write_fd,
                stderr=subprocess.STDOUT, pass_fds=(child_end.fileno(),), start_new_session=True, close_fds=True,
                cwd=str(self.scratch), preexec_fn=preexec,
            ).result()
        except BaseException:
            child_end.close()
            judge_end.close()
            self.output.close()
            self.box.close()
            sandbox.remove_scratch(self.scratch)
            raise
        self.output.started()
        self.box.adopt(self.proc.pid)
        child_end.close()
        self.started = time.monotonic()
        self.ready_s: Optional[float] = None
        self.held_s = 0.0  # time its start was held (stopped by Pool.held), which its ready timeout does not count
        self._held_at: Optional[float] = None

    def wait_ready(self, timeout: Optional[float] = None) -> "CandidateProcess":
        """Block until the process has loaded its backend (READY_TIMEOUT_S, not counting time it was held);
        StartError (with its output) if it cannot."""
        limit = READY_TIMEOUT_S if timeout is None else timeout
        while True:
            try:
                msg, _ = self.reader.recv(self.started + limit + self.held_s)
            except TimeoutError as e:
                if self._held_at is not None or time.monotonic() < self.started + limit + self.held_s:
                    time.sleep(0.05)  # held now, or released since the deadline was taken: wait on
                    continue
                msg = {"op": "error", "message": f"{type(e).__name__}: {e}"}
            except (frames.FrameError, frames.PeerClosed, OSError) as e:
                msg = {"op": "error", "message": f"{type(e).__name__}: {e}"}
            break
        if msg.get("op") != "ready":
            self.kill()
            detail = str(msg.get("message") or "") + "\n" + self.log_tail(2000)
            raise StartError(f"a candidate process for backend '{self.launch.backend}' failed to start: "
                             f"{detail.strip() or 'no output'}")
        self.ready_s = time.monotonic() - self.started
        return self

    # -- requests --------------------------------------------------------------------------------
    def send(self, msg: dict, fds: tuple[int, ...] = ()) -> None:
        try:
            frames.send(self.sock, msg, fds)
        except OSError as e:
            raise Died(f"its socket broke ({e})", self._ended()) from None

    def request(self, msg: dict, deadline: float, compile_credit: Optional[list[float]] = None,
                fds: tuple[int, ...] = (), spin: bool = False) -> dict:
        """Send one request and wait for its reply until `deadline` (monotonic). Time the process reports as
        compilation extends the deadline, out of `compile_credit` ([seconds left]), never beyond it. With `spin`
        (a request the judge's clock times), the reply is polled for back to back for up to SPIN_S. Raises
        TimeoutError, Died, Overrun or frames.FrameError."""
        self.send(msg, fds)
        spin_until = time.monotonic() + SPIN_S if spin else None
        compiling_since: Optional[float] = None
        while True:
            now = time.monotonic()
            wait_until = deadline
            if compiling_since is not None and compile_credit is not None:
                wait_until = deadline + compile_credit[0]  # while it compiles: at most the compile time left
            if now >= wait_until:
                raise TimeoutError
            try:
                reply, _ = self.reader.recv(min(wait_until, now + WATCH_S), spin_until)
            except TimeoutError:
                self._watch()
                continue
            except frames.PeerClosed:
                raise Died(self._how(), self._ended()) from None
            if reply.get("op") == "progress":
                if compile_credit is None:
                    continue
                now = time.monotonic()
                if reply.get("compiling") and compiling_since is None:
                    compiling_since = now
                elif not reply.get("compiling") and compiling_since is not None:
                    used = min(now - compiling_since, compile_credit[0])
                    compile_credit[0] = max(0.0, compile_credit[0] - used)
                    deadline += used  # the compile time is the compile limit's, not this request's
                    compiling_since = None
                continue
            if reply.get("op") != "reply":
                raise frames.FrameError(f"an unexpected message {str(reply.get('op'))[:40]!r} instead of a reply")
            if compiling_since is not None and compile_credit is not None:
                compile_credit[0] = max(0.0, compile_credit[0] - (time.monotonic() - compiling_since))
            return reply

    def _watch(self) -> None:
        """End the sandbox when its processes exceed the limit (RLIMIT_NPROC does not bind processes whose user
        is root outside the namespace, so the judge counts them itself), or its scratch folder the disk limit
        (RLIMIT_FSIZE binds one file, not how many; checked at most once a second)."""
        limits = self.launch.limits
        if self.proc.poll() is not None:
            return
        if limits.processes is not None and len(descendants(self.proc.pid)) > limits.processes + 2:  # bwrap, init
            self.kill()
            raise Overrun(f"it started more than {limits.processes} processes")
        now = time.monotonic()
        if limits.scratch_bytes is None or now - getattr(self, "_disk_checked", 0.0) < DISK_WATCH_S:
            return
        self._disk_checked = now
        used, files = sandbox.folder_usage(self.scratch, limit_files=limits.scratch_files)
        if used > limits.scratch_bytes or files > limits.scratch_files:
            self.kill()
            size = (f"{limits.scratch_bytes / 2**30:.1f} GiB" if limits.scratch_bytes >= 1 << 30
                    else f"{limits.scratch_bytes / 2**20:.0f} MiB")
            raise Overrun(f"it wrote more than the sandbox's disk limit ({size} or {limits.scratch_files:,} files) "
                          "into its scratch folder (the size is KSDK_SCRATCH_LIMIT_BYTES)")

    # -- ending ------------------------------------------------------------------------------------
    def _how(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            return "it closed its connection to the judge"
        how = _signal_name(code, self.launch.sandboxed)
        if self.box.oom_kills():
            limit = self.box.memory_limit_bytes or 0
            how += (f": its processes used more than the sandbox's memory limit ({limit / 2**30:.1f} GiB, "
                    "KSDK_MEMORY_LIMIT_BYTES; files in RAM-backed folders count)")
        return how

    def _ended(self) -> str:
        self.kill()  # its processes are gone, so the last of what they printed is in
        return self.log_tail(2000)

    def log_tail(self, limit: int = 3000) -> str:
        """The end of what the candidate's processes printed (the judge keeps the last 64 KiB)."""
        return self.output.tail(limit, wait_s=0.0 if self.alive else 2.0)

    def cpu_ns(self) -> int:
        """CPU time used so far by the candidate's processes, including threads and children that are gone."""
        return self.box.cpu_ns()

    def threads_cpu_ns(self) -> dict[str, int]:
        """CPU time (ns) of the candidate's live threads by thread name: a record of which threads ran."""
        return thread_cpu(self.box.pids())

    def freeze(self) -> None:
        """Stop every process of the candidate's, all at once where cgroups allow, and return once none runs: work
        it left running cannot go on. Overrun (after ending them) if they cannot be stopped."""
        try:
            self.box.freeze()
        except (containment.ContainmentError, OSError) as e:
            self.kill()
            raise Overrun(f"its processes could not be stopped ({e})") from None

    def thaw(self) -> None:
        """Let the candidate's processes run again (nothing to do once they are ended)."""
        try:
            self.box.thaw()
        except OSError:
            pass

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def hold(self) -> None:
        """Stop its processes (a start in progress) until `release`; a box that cannot be frozen keeps running."""
        if self._held_at is None:
            try:
                self.box.freeze()
            except containment.ContainmentError:
                return
            self._held_at = time.monotonic()

    def release(self) -> None:
        """Let a held start go on."""
        if self._held_at is not None:
            self.box.thaw()
            self.held_s += time.monotonic() - self._held_at
            self._held_at = None

    def kill(self) -> None:
        """End the process and everything it started (its box, its session and, sandboxed, its PID namespace)."""
        self.box.close()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        sandbox.remove_scratch(self.scratch)

    def close(self) -> None:
        """Ask the process to exit, then make sure it and its children have."""
        try:
            frames.send(self.sock, {"op": "exit"})
        except OSError:
            pass
        self.kill()
        self.output.close()


def sandbox_launch(backend_cls, ctx, env: dict[str, str], unsandboxed: bool,
                   warn: Callable[[str], None] = lambda line: None) -> Launch:
    """The Launch for a backend: sandboxed, unless the user opted in to `unsandboxed`."""
    status = sandbox.status()
    if not unsandboxed and not status.available:
        raise StartError(status.line())
    if unsandboxed:
        warn("candidates run UNSANDBOXED (--no-sandbox / KSDK_NO_SANDBOX=1): they can read your files and "
             "secrets, reach the network and leave processes behind")
    return Launch(backend=backend_cls.name, device=ctx.device, interpret=ctx.interpret, env=dict(env),
                  sandboxed=not unsandboxed, readonly=list(backend_cls.sandbox_paths()),
                  devices=[] if ctx.interpret else list(backend_cls.sandbox_devices(ctx)))
