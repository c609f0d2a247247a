"""`ksdk serve` as a subprocess for tests, started on loopback and stopped by signal."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class Service:
    """One `ksdk serve` subprocess; `start()` returns once it listens (read from its own output)."""

    def __init__(self, site: Path, state_dir: Path, ledger: Path, args: list[str], backend: str = "toy_py"):
        self.site, self.state_dir, self.ledger, self.args, self.backend = site, state_dir, ledger, args, backend
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str | None:
        p = self.state_dir / "token"
        return p.read_text().strip() if p.exists() else None

    def start(self, timeout: float = 60.0) -> "Service":
        from toy_backend import env_with

        env = env_with(self.site, KSDK_TOY_LEDGER=str(self.ledger))
        cmd = [sys.executable, "-m", "ksdk", "serve", "--backend", self.backend, "--port", str(self.port),
               "--state-dir", str(self.state_dir), *self.args]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue = queue.Queue()

        def pump(stream=self.proc.stdout):
            for line in stream:
                self.lines.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise RuntimeError("ksdk serve exited:\n" + "".join(self.lines))
            if " on http://" in line:
                self.port = int(line.split(" on http://", 1)[1].split()[0].rsplit(":", 1)[1])
                return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
