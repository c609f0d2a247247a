"""The judge process: loads one backend, bound to one device, and judges candidates its driver sends.

Run as `python -m ksdk.evaluation.worker BACKEND DEVICE [--interpret]` by LocalEvaluator, never by hand.
Protocol: frames (ksdk/evaluation/frames.py, messages in protocol.py) on the inherited socket named in
KSDK_WORKER_FD; stdout/stderr go to a log file so that nothing printed can corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback

from ksdk.evaluation import frames
from ksdk.evaluation.protocol import JUDGE_ENV, PARENT_ENV, WORKER_FD_ENV, Evaluate, Note
from ksdk.models import Candidate, ErrorKind, EvalResult, Stage, Status, Task, trim_message


class _Channel:
    """Frames to and from the driver (ksdk/evaluation/protocol.py)."""

    def __init__(self, sock: socket.socket):
        self.sock, self.reader = sock, frames.Reader(sock)

    def send(self, note: Note) -> None:
        frames.send(self.sock, note.model_dump(mode="json", exclude_defaults=True))

    def recv(self) -> dict | None:
        try:
            return self.reader.recv()[0]
        except frames.PeerClosed:
            return None


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when its parent dies (a driver killed with -9 leaves no orphans that
    hold a device); if the parent is already gone, exit now. Linux ties this to the thread that forked the
    worker, so WorkerProcess forks from one thread that lives as long as the driver."""
    parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent and os.getppid() != parent:
        os._exit(0)


def _judge_settings() -> dict:
    try:
        cfg = json.loads(os.environ.pop(JUDGE_ENV, "") or "{}")
    except ValueError:
        cfg = {}
    return cfg if isinstance(cfg, dict) else {}


def _device_lock(path, warnings: list[str]):
    """The device's lock among judges (ksdk/evaluation/device_lock.py), or None with a warning saying why not."""
    if not path:
        return None
    from ksdk.evaluation.device_lock import DeviceLock

    try:
        return DeviceLock(str(path))
    except OSError as e:
        warnings.append(f"the device's lock {path} cannot be opened ({e}): judges sharing this device do not wait "
                        "for each other's timing; make its folder writable")
        return None


def main(argv: list[str]) -> int:
    _die_with_parent()
    backend_name, device = argv[0], int(argv[1])
    interpret = "--interpret" in argv
    sock = socket.socket(fileno=int(os.environ.pop(WORKER_FD_ENV)))
    sock.set_inheritable(False)
    os.environ.pop(PARENT_ENV, None)
    chan = _Channel(sock)
    cfg = _judge_settings()
    if not interpret:  # the judge's own Triton (torch.compile's baseline, do_bench) runs on the device
        os.environ["TRITON_INTERPRET"] = "0"
    try:
        from ksdk.evaluation import sandboxed, spares as spare_pool
        from ksdk.interfaces.backend import RunContext
        from ksdk.registry import load_backend

        cls = load_backend(backend_name)
        backend = cls()
        versions = backend.versions()
        ctx = RunContext(device=device, interpret=interpret)
        availability = cls.probe()
        probed = None if interpret else next((d for d in availability.devices if d.index == device), None)
        warnings: list[str] = []
        launch = sandboxed.sandbox_launch(cls, ctx, dict(os.environ), unsandboxed=not cfg.get("sandbox", True),
                                          warn=warnings.append)
        target = backend.target(ctx)
        target.prepare()  # its buffers exist before the first evaluation's memory is watched
        spares = int(cfg.get("spares", 1))
        lock = _device_lock(cfg.get("device_lock"), warnings)
        seeder = spare_pool.Seeder(backend, ctx)
        pool = spare_pool.Pool(launch, spares, seeder)
    except Exception as e:  # the parent turns this into an 'unavailable' error for the user
        chan.send(Note(op="error", message=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()))
        return 3
    chan.send(Note(op="ready", versions=versions, pid=os.getpid(), warnings=warnings))
    from ksdk.evaluation.judge import JudgeContext, evaluate

    try:
        while True:
            msg = chan.recv()
            if msg is None or msg.get("op") == "exit":
                return 0
            req = Evaluate.model_validate(msg)
            nonce = req.nonce
            chan.send(Note(op="accepted", nonce=nonce))
            task = Task.model_validate(req.task)
            cand = Candidate.model_validate(req.candidate)
            state = {"stage": Stage.LOAD}

            def on_stage(stage: Stage, limit: float, state=state, nonce=nonce) -> None:
                state["stage"] = stage
                chan.send(Note(op="stage", stage=stage.value, limit=limit, nonce=nonce))

            def on_wait(waiting: bool, nonce=nonce) -> None:
                chan.send(Note(op="waiting" if waiting else "resumed", nonce=nonce))

            jc = JudgeContext(backend=backend, run=ctx, pool=pool, on_stage=on_stage, on_wait=on_wait, device=probed,
                              fallback=availability.fallback if interpret else None,
                              skip_performance=req.skip_performance, sandboxed=launch.sandboxed,
                              target=target, lock=lock)
            t0 = time.perf_counter()
            try:
                result = evaluate(task, cand, jc)
            except Exception as e:  # a bug in the judge or the backend, not the candidate's fault: say so
                result = EvalResult(stage=state["stage"], status=Status.INFRA_ERROR, error_kind=ErrorKind.INFRA)
                result.message = trim_message(f"the judge for backend {backend_name} raised {type(e).__name__}: {e}\n"
                                              + traceback.format_exc())
            result.wall_s = time.perf_counter() - t0
            recycle = False
            try:
                recycle = bool(backend.sticky_error(result))
            except Exception:
                recycle = True
            chan.send(Note(op="result", nonce=nonce, result=result.model_dump(mode="json"), recycle=recycle))
            if recycle:
                return 0
    finally:
        pool.close()
        seeder.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
