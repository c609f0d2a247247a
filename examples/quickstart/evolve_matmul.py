"""The quickstart as a Python script: the same run as `ksdk evolve`, in a few lines.

    python examples/quickstart/evolve_matmul.py [RUN_DIR] [MAX_CANDIDATES]
"""

import sys
from pathlib import Path

from ksdk.evolution.api import evolve

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart-matmul"
    summary = evolve(HERE / "matmul.py", backend="cpu_c", mutator="params", seed=HERE / "matmul_seed.c",
                     max_candidates=int(sys.argv[2]) if len(sys.argv) > 2 else 60, max_minutes=5, out=out)
    print(f"best {summary.best_speedup:.2f}x over the naive C loop -> {summary.best_path}")
    print(f"report: {summary.files.get('report', Path(out) / 'report.html')}")
