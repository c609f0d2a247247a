"""The candidate's process: one candidate, inside the sandbox, serving the judge's requests with a backend's
Runner primitives. It decides nothing: it runs what it is asked and reports raw results, which the judge checks.

Run as `python -m ksdk.evaluation.candidate BACKEND DEVICE [--interpret]` by the judge, never by hand. The
socket to the judge is the inherited fd named in KSDK_RUNNER_FD (ksdk/evaluation/protocol.py holds the messages);
stdout and stderr go to a bounded log the judge keeps.
"""

from __future__ import annotations

import inspect
import os
import socket
import sys
import time
import traceback
from typing import Any

from ksdk.evaluation import frames
from ksdk.evaluation.protocol import RUNNER_FD_ENV
from ksdk.evaluation.shared import Slot
from ksdk.interfaces.backend import run_passes
from ksdk.models import ErrorKind, TimingSettings, trim_message


class Harness:
    """Dispatches the judge's requests to one Runner; keeps the shared regions the judge sent."""

    def __init__(self, sock: socket.socket, backend, ctx):
        self.sock, self.backend, self.ctx = sock, backend, ctx
        self.reader = frames.Reader(sock, accept_fds=True)
        self.memory = backend.memory(ctx)
        self.regions: dict[str, Any] = {}
        self.runner = None
        self.task = None
        self.t_in = 0.0
        ctx.on_compile = lambda compiling: frames.send(sock, {"op": "progress", "compiling": bool(compiling)})

    def view(self, arg: dict) -> Any:
        if "slot" in arg:
            slot = Slot.model_validate(arg["slot"])
            return self.regions[slot.region].view(slot)
        return arg.get("value")

    def views(self, args: list) -> list:
        return [self.view(a) for a in args]

    def stamps(self) -> list[float]:
        """This process's clock when the request was read and now (the judge's clock keeps them as a record)."""
        return [self.t_in, time.perf_counter()]

    def serve(self) -> int:
        while True:
            try:
                msg, fds = self.reader.recv()
            except frames.PeerClosed:
                return 0
            self.t_in = time.perf_counter()  # when the request was read: a record for the judge's clock (`at`)
            op = msg.get("op")
            if op == "exit":
                return 0
            try:
                reply = self.handle(op, msg, fds)
                reply.update(op="reply", ok=True)
            except Exception as e:  # noqa: BLE001 - every failure is reported to the judge, which decides
                reply = failure(e)
            frames.send(self.sock, reply)

    def handle(self, op: str, msg: dict, fds: list[int]) -> dict:
        if op == "region":
            name, size = str(msg["name"]), int(msg["size"])
            if name in self.regions:
                self.regions[name].close()
            self.regions[name] = self.memory.attach(name, fds[0], size)
            return {}
        if op == "release":
            region = self.regions.pop(str(msg["name"]), None)
            if region is not None:
                region.close()
            _tidy()
            return {}
        if op == "ping":
            if self.runner is not None:
                self.runner.synchronize()
            return {"at": self.stamps()}
        if op == "setup":
            from ksdk.interfaces.backend import TaskView

            t = msg["task"]
            self.task = TaskView(name=t["name"], source=t["source"], seed=int(t["seed"]),
                                 init_inputs=list(t.get("init_inputs") or []), params=self.views(msg.get("params", [])),
                                 inputs=list(t.get("inputs") or []), outputs=list(t.get("outputs") or []),
                                 overrides=dict(t.get("overrides") or {}))
            self.runner = self.backend.runner(self.ctx)
            self.runner.setup(self.task)
            return {}
        if op == "load":
            self.runner.load(msg["source"])
            return {}
        if op == "build":
            kernels = self.runner.build()
            return {"kernels": [k.model_dump(mode="json") for k in kernels]}
        if op == "call":
            if msg.get("rng_seed") is not None:
                _seed(int(msg["rng_seed"]))
            report = self.runner.call(self.views(msg["inputs"]), self.views(msg["outputs"]),
                                      record_ops=bool(msg.get("record_ops")))
            _tidy()
            return {"report": report_dict(report)}
        if op == "time":
            settings = TimingSettings.model_validate(msg["settings"])
            samples, report = self.runner.time(self.views(msg["inputs"]), self.views(msg["outputs"]), settings,
                                               float(msg.get("share", 1.0)), msg.get("warmup"),
                                               int(msg.get("round", 0)))
            return {"samples": [float(x) for x in samples], "report": report_dict(report)}
        if op == "prepare_batch":
            ins, outs = [self.views(a) for a in msg["inputs"]], [self.views(a) for a in msg["outputs"]]
            if "arena" in inspect.signature(self.runner.prepare_batch).parameters:  # Runners before arenas had none
                arena = self.view({"slot": msg["arena"]}) if msg.get("arena") else None
                mode = self.runner.prepare_batch(ins, outs, arena, str(msg.get("mode") or "graph"))
            else:
                mode = self.runner.prepare_batch(ins, outs)
            _tidy()
            return {"mode": str(mode), "placed": self.runner.placed_outputs()}
        if op == "batch":
            passes = int(msg.get("passes") or 1)
            if msg.get("events"):  # Runner.run_batch_timed: every Runner has it (None where it has no own clock)
                ms = run_passes(self.runner.run_batch_timed, passes)
                notes = getattr(self.runner, "batch_notes", None)  # optional: what else the Runner saw (a record)
                return {"placed": self.runner.placed_outputs(), "device_ms": ms, "at": self.stamps(),
                        "notes": notes if isinstance(notes, dict) else None}
            run_passes(self.runner.run_batch, passes)
            return {"placed": self.runner.placed_outputs(), "at": self.stamps()}
        raise ValueError(f"unknown request {op!r}")


def _seed(seed: int) -> None:
    """Seed the random generators a forward may draw from (the judge's reference drew from the same state)."""
    import random

    random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def _tidy() -> None:
    """Give cached device memory back after a call: the judge's memory and the candidate's stay within one trial."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def report_dict(report) -> dict:
    return {"outputs": [[list(map(int, s)), str(d)] for s, d in report.outputs], "launches": report.launches,
            "torch_ops": report.torch_ops, "problems": [str(p) for p in report.problems],
            "kernels_seen": report.kernels_seen, "kernel_record": report.kernel_record,
            "kernel_record_lost": bool(report.kernel_record_lost),
            "compile_s": float(report.compile_s), "cross_checks": report.cross_checks,
            "peak_memory_bytes": report.peak_memory_bytes, "written_by_kernels": report.written_by_kernels,
            "kernels": [k.model_dump(mode="json") for k in report.kernels], "method": str(report.method)[:300],
            "warnings": [str(w)[:500] for w in report.warnings[:8]], "seed_requests": list(report.seed_requests[:16])}


def failure(e: BaseException) -> dict:
    """A reply saying a request failed: the candidate's error (CandidateError) or an unexpected exception."""
    from ksdk.interfaces.backend import CandidateError

    if isinstance(e, CandidateError):
        return {"op": "reply", "ok": False, "kind": e.kind.value, "message": trim_message(e.message), "line": e.line}
    text = f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exception(e)[-6:])
    return {"op": "reply", "ok": False, "kind": ErrorKind.RUNTIME.value, "message": trim_message(text),
            "line": None, "unexpected": True}


def _die_with_parent() -> None:
    """Outside a sandbox (--no-sandbox), ask Linux to kill this process when the judge dies."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def main(argv: list[str]) -> int:
    _die_with_parent()
    backend_name, device = argv[0], int(argv[1])
    interpret = "--interpret" in argv
    fd = int(os.environ.pop(RUNNER_FD_ENV))
    sock = socket.socket(fileno=fd)
    sock.set_inheritable(False)
    t0 = time.perf_counter()
    try:
        from ksdk.interfaces.backend import RunContext
        from ksdk.registry import load_backend

        backend = load_backend(backend_name)()
        ctx = RunContext(device=device, interpret=interpret)
        backend.warm_up(ctx)
        harness = Harness(sock, backend, ctx)
    except Exception as e:  # noqa: BLE001 - before any candidate code: an installation problem, said as such
        frames.send(sock, {"op": "error", "message": f"{type(e).__name__}: {e}",
                           "traceback": traceback.format_exc()[-3000:]})
        return 3
    frames.send(sock, {"op": "ready", "warm_s": time.perf_counter() - t0})
    return harness.serve()


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown: tensors of a batch's memory pool must not be freed after the pool
