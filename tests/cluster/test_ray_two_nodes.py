"""A Ray cluster of two local nodes (`ray start --head` + `ray start --address`): one actor lands on each."""

from __future__ import annotations

import json
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

pytest.importorskip("ray")

DRIVER = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[2])
import toy_backend as toy
from ksdk.cluster.ray import RayEvaluator
from ksdk.models import Candidate
from ksdk.tasks import task_from_source

ev = RayEvaluator("toy_py", resources={"toy": 1}, address=sys.argv[1])
task = task_from_source("toy", toy.TASK_SOURCE)
cands = [Candidate(source=toy.GOOD.format(n=i) + f"tag = {i}\\n", language="toy_py") for i in range(4)]

async def go():
    try:
        return await asyncio.gather(*(ev.evaluate(task, c) for c in cands))
    finally:
        await ev.close()

workers, nodes = ev.workers, [p["node"] for p in ev.placement()]
results = asyncio.run(go())
print(json.dumps({"workers": workers, "nodes": nodes, "correct": [r.correct for r in results],
                  "ids_match": [r.candidate_id for r in results] == [c.id for c in cands]}))
"""

pytestmark = pytest.mark.slow  # about 25 s on 2 cores: two Ray nodes start and drain


def ray_node(args: list[str], env: dict, timeout: float = 120.0) -> subprocess.Popen:
    """`ray start --block ...`, returned once it reports the node started (SIGTERM stops its processes)."""
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--block", "--disable-usage-stats",
           "--node-ip-address=127.0.0.1", "--num-cpus=1", '--resources={"toy": 1}', *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
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


def test_two_local_nodes_each_run_an_actor(ray_toy_site):
    # Ray's socket paths must stay under 108 bytes: a short temp dir, not pytest's long tmp_path.
    temp = tempfile.mkdtemp(prefix="ksdk-ray-", dir="/tmp")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    # Loopback-only throwaway cluster, auth off for nodes and driver alike; its workers find toy_py.
    env = toy.env_with(ray_toy_site, RAY_AUTH_MODE="disabled")
    nodes = [ray_node(["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"], env)]
    try:
        nodes.append(ray_node([f"--address=127.0.0.1:{port}"], env))
        # The driver runs in its own process: Ray keeps per-process state (auth mode, a session) that an
        # earlier test's local instance in this process would otherwise leak into this cluster's driver.
        out = subprocess.run([sys.executable, "-c", DRIVER, f"127.0.0.1:{port}", str(Path(toy.__file__).parent)],
                             env=env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr[-3000:]
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["workers"] == 2
        assert len(set(report["nodes"])) == 2  # one actor per node
        assert report["correct"] == [True] * 4 and report["ids_match"]
    finally:
        for n in reversed(nodes):
            stop(n)
        shutil.rmtree(temp, ignore_errors=True)
