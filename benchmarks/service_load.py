"""Load test of the evaluation service on loopback: many concurrent clients, a kill and restart mid-run.

    python benchmarks/service_load.py [--evaluations 1000] [--clients 50] [--kill-at 0.4] [--backend cpu_c]

Starts `ksdk serve` (token auth, a state dir in a temp folder) on 127.0.0.1, sends N distinct small CPU
candidates from C concurrent ServiceEvaluator clients, SIGKILLs the service once a fraction of the verdicts
are in and starts it again on the same port and state dir. Checks: every candidate gets exactly one verdict
back (none lost, none duplicated), the service's store records exactly one evaluation run to a verdict per
candidate, and every verdict is the expected one. Reports p50/p99 latency and throughput as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

# The cpu_c tests' small task (a 4096-element vector add, timed briefly), with one correctness trial here.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "cpu_backend"))
from cpu_c_cases import ADD_TASK as _ADD_TASK, GOOD as _GOOD  # noqa: E402

ADD_TASK = _ADD_TASK.replace('"correctness_trials": 2', '"correctness_trials": 1')
GOOD = _GOOD + "static const int variant_%d = %d;\n"


def toy_setup() -> tuple[str, str, str]:
    """The tests' toy_py backend (a few ms per evaluation: measures the service, not a compiler)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "service"))
    import toy_backend

    site = toy_backend.make_site(Path(tempfile.mkdtemp(prefix="ksdk-toy-")))
    os.environ["PYTHONPATH"] = f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    good = toy_backend.GOOD.format(n=0) + "variant_%d = %d\n"
    return toy_backend.TASK_SOURCE, good, "toy_py"


def candidates(n: int, good: str, language: str):
    """n distinct programs (a distinct constant each); every 10th is wrong on purpose."""
    from ksdk.models import Candidate

    out = []
    for i in range(n):
        src = good % (i, i)
        if i % 10 == 9:
            src = src.replace("a[i] + b[i]", "a[i] - b[i]").replace("x * 2.0 + 1.0", "x * 3.0")
        out.append(Candidate(id=f"c{i:05d}", source=src, language=language))
    return out


class Service:
    """`ksdk serve` as a subprocess; start() returns once it listens."""

    def __init__(self, backend: str, state: Path, workers: int, queue_size: int, extra: tuple[str, ...] = (),
                 env: dict | None = None):
        self.args = ["--backend", backend, "--state-dir", str(state), "--workers", str(workers),
                     "--queue-size", str(queue_size), *extra]
        self.env = env
        self.state = state
        self.port, self.proc, self.log = 0, None, []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "ksdk", "serve", "--port", str(self.port), *self.args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env)
        lines: queue.Queue = queue.Queue()

        def pump(stream=self.proc.stdout):
            for line in stream:
                self.log.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        while True:
            line = lines.get(timeout=120)
            if line is None:
                raise SystemExit("ksdk serve exited:\n" + "".join(self.log))
            if " on http://" in line:
                self.port = int(line.rsplit(":", 1)[1].split()[0])
                return time.monotonic() - t0

    def signal(self, sig) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)


async def drive(args) -> dict:
    from ksdk.service.client import ServiceEvaluator
    from ksdk.service.models import idempotency_key
    from ksdk.service.store import VerdictStore
    from ksdk.tasks import task_from_source

    task_src, good, language = toy_setup() if args.backend == "toy_py" else (ADD_TASK, GOOD, "c")
    state = Path(tempfile.mkdtemp(prefix="ksdk-load-"))
    svc = Service(args.backend, state, args.workers, args.queue_size)
    svc.start()
    token = (state / "token").read_text().strip()
    task = task_from_source("vector_add", task_src)
    cands = candidates(args.evaluations, good, language)
    todo: asyncio.Queue = asyncio.Queue()
    for c in cands:
        todo.put_nowait(c)
    results: dict[str, list] = {}
    latency: dict[str, float] = {}
    clients = [ServiceEvaluator(f"http://127.0.0.1:{svc.port}", token=token, backend=args.backend, wait_s=30,
                                backoff_s=0.2) for _ in range(args.clients)]
    kill_after = int(args.kill_at * args.evaluations) if args.kill_at > 0 else None
    killed = asyncio.Event()
    restart = {}

    async def client(ev: ServiceEvaluator):
        while not todo.empty():
            c = todo.get_nowait()
            t0 = time.perf_counter()
            r = await ev.evaluate(task, c)
            latency[c.id] = time.perf_counter() - t0
            results.setdefault(c.id, []).append(r)
            if kill_after is not None and len(results) >= kill_after and not killed.is_set():
                killed.set()

    async def killer():
        await killed.wait()
        pid = svc.proc.pid
        t0 = time.monotonic()
        await asyncio.to_thread(svc.signal, signal.SIGKILL)
        restart.update(killed_pid=pid, verdicts_before_kill=len(results))
        listen_s = await asyncio.to_thread(svc.start)
        restart.update(restarted_pid=svc.proc.pid, listening_after_s=round(time.monotonic() - t0, 2),
                       start_s=round(listen_s, 2))

    t_start = time.perf_counter()
    kill_task = asyncio.create_task(killer())
    await asyncio.gather(*(client(ev) for ev in clients))
    wall = time.perf_counter() - t_start
    if not killed.is_set():
        kill_task.cancel()
    retried = sum((ev.retried for ev in clients), Counter())
    info = clients[0].service_info(refresh=True)
    for ev in clients:
        await ev.close()
    svc.signal(signal.SIGTERM)

    store = VerdictStore(state / "verdicts.sqlite")
    counts = store.evaluation_counts()
    by_pid = dict(store._db.execute("SELECT pid, COUNT(*) FROM evaluations GROUP BY pid").fetchall())
    store.close()
    keys = {idempotency_key(task, c, args.backend) for c in cands}
    lost = [c.id for c in cands if c.id not in results]
    duplicated = [k for k, v in results.items() if len(v) != 1]
    mislabelled = [k for k, v in results.items() if any(r.candidate_id != k for r in v)]
    expected_ok = {c.id: (int(c.id[1:]) % 10 != 9) for c in cands}
    wrong_verdicts = [k for k, v in results.items() if v[0].correct != expected_ok[k]]
    infra = [k for k, v in results.items() if v[0].status.value == "infra_error"]
    if infra:
        print("first infra error:", results[infra[0]][0].message, file=sys.stderr)
    store_not_once = {k: n for k, n in counts.items() if n != 1}
    lat = np.array(sorted(latency.values())) * 1e3
    evals_ms = np.array([v[0].wall_s for v in results.values() if not v[0].cached]) * 1e3
    report = {
        "date": time.strftime("%Y-%m-%d"), "host": f"{platform.node()} ({os.cpu_count()} cores)",
        "backend": args.backend, "evaluations": args.evaluations, "clients": args.clients,
        "service_workers": args.workers, "queue_size": args.queue_size,
        "wall_s": round(wall, 2), "throughput_per_s": round(args.evaluations / wall, 2),
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1), "p99": round(float(np.percentile(lat, 99)), 1),
                       "max": round(float(lat.max()), 1)},
        "evaluation_wall_ms_median": round(float(np.median(evals_ms)), 1) if evals_ms.size else None,
        "client_retries": dict(retried),
        "kill": restart or None,
        "evaluations_recorded_per_process": {str(k): v for k, v in by_pid.items()},
        "replayed_after_restart": info.replayed,
        "checks": {
            "lost": len(lost), "duplicated": len(duplicated), "mislabelled": len(mislabelled),
            "unexpected_verdicts": len(wrong_verdicts), "infra_errors": len(infra),
            "store_keys": len(counts), "store_keys_expected": len(keys & set(counts)) == len(keys),
            "store_keys_not_exactly_once": len(store_not_once),
        },
    }
    report["ok"] = (not lost and not duplicated and not mislabelled and not wrong_verdicts and not infra
                    and not store_not_once and len(counts) == len(keys) == args.evaluations)
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="cpu_c", help="cpu_c (example C backend) or toy_py (the tests' backend)")
    ap.add_argument("--evaluations", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queue-size", type=int, default=64, help="the service's --queue-size (64, its default)")
    ap.add_argument("--kill-at", type=float, default=0.4, help="fraction of verdicts after which to SIGKILL (0: never)")
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args()
    report = asyncio.run(drive(args))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
