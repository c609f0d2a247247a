"""A Ray cluster of two local nodes (`ray start --head` + `ray start --address`): one actor lands on each."""

from __future__ import annotations

import asyncio
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import toy_backend as toy
from ksdk.models import Candidate
from ksdk.tasks import task_from_source

ray = pytest.importorskip("ray")
from ksdk.cluster.ray import RayEvaluator  # noqa: E402

pytestmark = pytest.mark.slow  # about 25 s on 2 cores: two Ray nodes start and drain


def ray_node(args: list[str], timeout: float = 120.0) -> subprocess.Popen:
    """`ray start --block ...`, returned once it reports the node started (SIGTERM stops its processes)."""
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--block", "--disable-usage-stats",
           "--node-ip-address=127.0.0.1", "--num-cpus=1", '--resources={"toy": 1}', *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    seen: list[str] = []

    def pump():
        for line in proc.stdout:
            seen.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        if line is None:
            raise RuntimeError("ray start exited:\n" + "".join(seen))
        if "Ray runtime started" in line:
            return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_two_local_nodes_each_run_an_actor(ray_toy_site, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a loopback-only throwaway cluster; nodes and driver agree
    # Ray's socket paths must stay under 108 bytes: a short temp dir, not pytest's long tmp_path.
    temp = tempfile.mkdtemp(prefix="ksdk-ray-", dir="/tmp")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    nodes = [ray_node(["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"])]
    try:
        nodes.append(ray_node([f"--address=127.0.0.1:{port}"]))
        ev = RayEvaluator("toy_py", resources={"toy": 1}, address=f"127.0.0.1:{port}")
        assert ev.workers == 2
        assert len({p["node"] for p in ev.placement()}) == 2  # one actor per node
        task = task_from_source("toy", toy.TASK_SOURCE)
        cands = [Candidate(source=toy.GOOD.format(n=i) + f"tag = {i}\n", language="toy_py") for i in range(4)]

        async def go():
            try:
                return await asyncio.gather(*(ev.evaluate(task, c) for c in cands))
            finally:
                await ev.close()

        results = asyncio.run(go())
        assert all(r.correct for r in results) and [r.candidate_id for r in results] == [c.id for c in cands]
    finally:
        for n in reversed(nodes):
            stop(n)
        shutil.rmtree(temp, ignore_errors=True)
