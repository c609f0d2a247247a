"""The Python API in one script: run an evolution, continue it, read its archive, plug in your own mutator.

    python examples/python_api.py [RUN_DIR]          # CPU only, no API key: the cpu_c example backend

Needs ksdk and the example backend: pip install -e . -e ./examples/cpu_backend (plus a CPU build of torch).
"""

import random
import sys
from pathlib import Path

from ksdk.archives.selection import SelectionConfig
from ksdk.archives.sqlite import SqliteArchive
from ksdk.evolution.api import evolve, resume
from ksdk.interfaces.mutator import MutationOutcome, MutationRequest, Mutator
from ksdk.models import Candidate, Mutation
from ksdk.mutators.tunables import apply_tunables, find_tunables

HERE = Path(__file__).resolve().parent
TASK = HERE / "quickstart" / "matmul.py"  # its seed, matmul_seed.c, is found beside it


class RandomTunables(Mutator):
    """A mutator of your own: set one `ksdk:tune` constant of the parent to a random allowed value."""

    name = "random_tunables"

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)

    async def propose(self, request: MutationRequest) -> MutationOutcome:
        parent = request.parent.candidate
        tunables = find_tunables(parent.source)
        if not tunables:
            return MutationOutcome(mutation=Mutation(mutator=self.name), error="the parent declares no tunables")
        t = self.rng.choice(tunables)
        value = self.rng.choice(t.choices)
        source = apply_tunables(parent.source, {t.name: value})
        mutation = Mutation(mutator=self.name, params={t.name: value})
        return MutationOutcome(candidate=Candidate(source=source, language=request.language), mutation=mutation)


def main(run_dir: Path) -> None:
    # 1. A run with the built-in parameter mutator, a few budgets and a custom selection policy.
    summary = evolve(TASK, backend="cpu_c", mutator="params", out=run_dir / "params",
                     max_candidates=15, max_minutes=3, target_speedup=20.0,
                     selection=SelectionConfig(islands=2, exploitation=0.8))
    print(f"params: {summary.evaluated} candidates, best {summary.best_speedup:.2f}x ({summary.stop_reason})")

    # 2. Continue it with a larger budget (what `ksdk evolve --resume` does).
    summary = resume(run_dir / "params", max_candidates=20)
    print(f"resumed: {summary.evaluated} candidates, best {summary.best_speedup:.2f}x -> {summary.best_path}")

    # 3. Your own mutator: pass an instance instead of a registered name.
    summary = evolve(TASK, backend="cpu_c", mutator=RandomTunables(seed=1), out=run_dir / "custom",
                     max_candidates=10, progress=False)
    print(f"custom mutator: best {summary.best_speedup:.2f}x, report {summary.files['report']}")

    # 4. Read an archive: every candidate with its verdict, every mutation attempt (failed ones too).
    archive = SqliteArchive(run_dir / "params" / "archive.sqlite")
    try:
        for entry in archive.best(3):
            r = entry.result
            print(f"  {entry.candidate.id}  {r.speedup:.2f}x  median {r.candidate_timing.median_ms:.2f} ms  "
                  f"params {entry.candidate.mutation.params if entry.candidate.mutation else {}}")
        print(f"  {len(archive.attempts())} mutation attempts, {archive.failed_attempts} failed or duplicate")
    finally:
        archive.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/python-api"))
