"""KernelBench's own evaluator and ksdk side by side, on the same (problem, candidate) pairs on the same GPU.

For each pair it runs KernelBench's `eval_kernel_against_ref` (imported from a KernelBench checkout's src/, never
committed: benchmarks/pack_device.sh packs it into .kb/src) in this process, then ksdk's LocalEvaluator
("triton_nvidia", sandboxed candidate processes), and prints both verdicts, both speedups, their ratio and both wall
times. Pairs: the honest Triton kernels in benchmarks/kernelbench, the cheats in benchmarks/kernelbench_cheats, and
level-1/2 problems with the reference as its own candidate (`ModelNew = Model`, as `ksdk bench --self-check`).
Where the verdicts differ, the note says which hole of KernelBench's evaluator the pair goes through.

  python benchmarks/kernelbench_peer.py --kb .kb [--kinds cheat,self,honest] [--problems 1/88 2/12 ...]
      [--self LEVEL/NUMBER ...] [--correct-trials 5] [--kb-trials 100] [--budget-s 420] [--out peer.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.util
import io
import json
import os
import statistics
import sys
import tempfile
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
HONEST = ROOT / "benchmarks" / "kernelbench"
CHEATS = ROOT / "benchmarks" / "kernelbench_cheats"
SELF_SUFFIX = "\n\n# the reference is its own candidate (ksdk bench --self-check)\nModelNew = Model\n"
# Level-1/2 problems with small inputs (KernelBench's CPU-made inputs stay cheap), one of each kind of op.
SELF_DEFAULT = ["1/1", "1/9", "1/12", "1/40", "1/50", "2/6", "2/12", "2/23", "2/29", "2/66", "2/76", "2/99"]
KINDS = ("cheat", "self", "honest")
# Modules KernelBench's package imports at its top for its LLM clients and dataset helpers; stubbed when missing.
STUBBED = {"dotenv": {"load_dotenv": lambda *a, **k: False}, "openai": {"OpenAI": object},
           "litellm": {"completion": None}, "requests": {}, "tqdm": {"tqdm": lambda it=None, *a, **k: it}}
# The hole in KernelBench's evaluator each cheat goes through; the note adds ksdk's verdict and message as evidence.
HOLES = {
    "torch_output": "KernelBench does not look at what forward calls (eval_kernel_against_ref runs no static "
                    "check), so PyTorch's own GELU passes as the custom kernel",
    "side_stream": "KernelBench records its CUDA events on the caller's stream only (timing.py: 'does not guard "
                   "against adversarial cuda streams yet'), and its synchronize before comparing completes the output",
    "lazy_when_timed": "KernelBench checks outputs in its correctness trials only, never those of the timed calls",
    "cached_by_input": "KernelBench times 100 calls on one input set, so a result memoised by input address is served "
                       "from the cache",
}
RANDOM_REFERENCE = ("KernelBench calls Model and ModelNew one after the other without reseeding, so a random op "
                    "(dropout in training mode) draws other values and the reference fails against itself; ksdk "
                    "seeds both sides of a trial alike")


@dataclass
class Pair:
    """One problem and one candidate for it."""

    problem: str  # levelN/STEM
    candidate: str  # honest | self | cheat:NAME
    path: Path  # the problem's file
    source: str  # the candidate's source
    allow_torch: bool = False  # the reference as candidate may call PyTorch ops

    @property
    def cheat(self) -> Optional[str]:
        return self.candidate.split(":", 1)[1] if self.candidate.startswith("cheat:") else None


@dataclass
class Row:
    """Both harnesses' results for one pair."""

    problem: str
    candidate: str
    kb: dict[str, Any] = field(default_factory=dict)  # verdict, speedup, wall_s, detail
    ksdk: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> Optional[float]:
        a, b = self.ksdk.get("speedup"), self.kb.get("speedup")
        return a / b if a and b else None


def _matches(problem: str, filters: list[str]) -> bool:
    """True when `problem` (levelN/STEM) is named by one of `filters`: 'N/NUMBER', 'levelN/NUMBER', or a STEM."""
    level, stem = problem.split("/", 1)
    number = stem.split("_", 1)[0]
    names = {f"{level[5:]}/{number}", f"{level}/{number}", stem, problem}
    return not filters or any(f in names for f in filters)


def _problem_file(levels: Path, spec: str) -> Path:
    """The problem file for 'N/NUMBER' in a folder of level folders."""
    level, number = spec.split("/", 1)
    found = sorted((levels / f"level{level}").glob(f"{number}_*.py"))
    if not found:
        raise SystemExit(f"no problem {spec} in {levels / f'level{level}'}")
    return found[0]


def build_pairs(levels: Path, kinds: tuple[str, ...] = KINDS, self_problems: list[str] = SELF_DEFAULT,
                problems: list[str] = (), honest: Path = HONEST, cheats: Path = CHEATS) -> list[Pair]:
    """The pairs, cheats first (small, fast), then the reference as candidate, then the honest kernels (KernelBench's
    largest inputs); `levels` holds KernelBench's level folders, `problems` filters all of them."""
    pairs: list[Pair] = []
    if "cheat" in kinds:
        for f in sorted(cheats.glob("level*/*/*.py")):
            problem = f"{f.parent.parent.name}/{f.parent.name}"
            pairs.append(Pair(problem, f"cheat:{f.stem}", levels / f"{problem}.py", f.read_text()))
    if "self" in kinds:
        for spec in self_problems:
            p = _problem_file(levels, spec)
            pairs.append(Pair(f"{p.parent.name}/{p.stem}", "self", p, p.read_text() + SELF_SUFFIX, allow_torch=True))
    if "honest" in kinds:
        for f in sorted(honest.glob("level*/*.py"), key=lambda f: (f.parent.name, int(f.stem.split("_")[0]))):
            problem = f"{f.parent.name}/{f.stem}"
            pairs.append(Pair(problem, "honest", levels / f"{problem}.py", f.read_text()))
    return [p for p in pairs if _matches(p.problem, list(problems))]


def explain(pair: Pair, kb: dict, ksdk: dict) -> str:
    """Why the verdicts differ ('' when they agree)."""
    kb_ok, ksdk_ok = kb.get("verdict") == "correct", ksdk.get("verdict") == "correct"
    if kb_ok == ksdk_ok:
        return ""
    if kb_ok and pair.cheat in HOLES:
        return f"{HOLES[pair.cheat]}; ksdk: {ksdk.get('verdict')}: {ksdk.get('detail', '')[:160]}"
    if ksdk_ok and pair.candidate == "self" and "dropout" in pair.path.read_text().lower():
        return RANDOM_REFERENCE
    if ksdk_ok and pair.cheat:
        return "UNEXPLAINED: ksdk passed a cheat"
    return f"UNEXPLAINED: KernelBench {kb.get('detail', '')[:120]!r}; ksdk {ksdk.get('detail', '')[:120]!r}"


def _num(x: Optional[float], fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    head = ["problem", "candidate", "KB verdict", "ksdk verdict", "KB speedup", "ksdk speedup", "ratio",
            "KB wall s", "ksdk wall s", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        kb = r.kb.get("verdict", "-") + (" (flagged >10x)" if r.kb.get("excessive_speedup") else "")
        cells = [r.problem, r.candidate, kb, r.ksdk.get("verdict", "-"),
                 _num(r.kb.get("speedup"), ".3f"), _num(r.ksdk.get("speedup"), ".3f"), _num(r.ratio, ".3f"),
                 _num(r.kb.get("wall_s"), ".1f"), _num(r.ksdk.get("wall_s"), ".1f"), r.note]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def summary(rows: list[Row]) -> dict[str, Any]:
    """Agreement, the median speedup ratio (pairs both call correct) and the median wall time per pair."""
    ran = [r for r in rows if r.kb.get("verdict") and r.ksdk.get("verdict")]
    ratios = [r.ratio for r in ran if r.ratio]
    kb_wall = [r.kb["wall_s"] for r in ran if r.kb.get("wall_s") is not None]
    ksdk_wall = [r.ksdk["wall_s"] for r in ran if r.ksdk.get("wall_s") is not None]
    return {"pairs": len(rows), "ran": len(ran),
            "verdicts_agree": sum(1 for r in ran if not r.note),
            "differ_explained": sum(1 for r in ran if r.note and not r.note.startswith("UNEXPLAINED")),
            "differ_unexplained": sum(1 for r in ran if r.note.startswith("UNEXPLAINED")),
            "median_speedup_ratio": statistics.median(ratios) if ratios else None,
            "ratios_within_3pct": sum(1 for x in ratios if abs(x - 1) <= 0.03), "ratios": len(ratios),
            "median_kb_wall_s": statistics.median(kb_wall) if kb_wall else None,
            "median_ksdk_wall_s": statistics.median(ksdk_wall) if ksdk_wall else None}


def stub_missing(stubs: dict[str, dict[str, Any]] = STUBBED) -> list[str]:
    """Put a stand-in module in sys.modules for each of `stubs` that cannot be imported; the names stubbed."""
    done = []
    for name, attrs in stubs.items():
        if name in sys.modules or importlib.util.find_spec(name) is not None:
            continue
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
        done.append(name)
    return done


def load_kernelbench(src: Path) -> Callable[..., Any]:
    """KernelBench's eval_kernel_against_ref from a checkout's src/ folder."""
    if not (src / "kernelbench" / "eval.py").is_file():
        raise SystemExit(f"no KernelBench source at {src} (bash benchmarks/pack_device.sh KERNELBENCH_GIT_DIR packs "
                         "it into .kb/src)")
    stubbed = stub_missing()
    if stubbed:
        print(f"stubbed for KernelBench's imports: {', '.join(stubbed)}", flush=True)
    sys.path.insert(0, str(src))
    from kernelbench.eval import eval_kernel_against_ref

    return eval_kernel_against_ref


def run_kb(evaluate: Callable[..., Any], pair: Pair, correct_trials: int, perf_trials: int) -> dict[str, Any]:
    """KernelBench's verdict, speedup (mean reference time / mean candidate time) and wall time for one pair."""
    import torch

    env, out = dict(os.environ), io.StringIO()
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            res = evaluate(pair.path.read_text(), pair.source, seed_num=42, num_correct_trials=correct_trials,
                           num_perf_trials=perf_trials, measure_performance=True, timing_method="cuda_event",
                           device=torch.device("cuda", 0), backend="triton", precision=torch.float32)
    except Exception as e:  # noqa: BLE001 - the peer's own failure is a result of the comparison
        res, err = None, f"{type(e).__name__}: {e}"
    else:
        err = "" if res is not None else "returned None (its 'lock file' retry case)"
    wall = time.perf_counter() - t0
    os.environ.clear()
    os.environ.update(env)  # it sets CUDA_VISIBLE_DEVICES and TORCH_USE_CUDA_DSA for the rest of the process
    gc.collect()
    torch.cuda.empty_cache()
    if res is None:
        return {"verdict": "harness_error", "speedup": None, "wall_s": wall, "detail": err,
                "log_tail": out.getvalue()[-1500:]}
    md = {k: str(v)[:300] for k, v in res.metadata.items()}
    verdict = ("correct" if res.correctness else "compile_error" if not res.compiled
               else "runtime_error" if "runtime_error" in md else "incorrect")
    speedup = res.ref_runtime / res.runtime if res.correctness and res.runtime > 0 and res.ref_runtime > 0 else None
    detail = md.get("runtime_error") or md.get("correctness_issue") or md.get("compilation_error") or ""
    return {"verdict": verdict, "speedup": speedup, "wall_s": wall, "detail": detail,
            "runtime_ms": res.runtime, "ref_runtime_ms": res.ref_runtime, "metadata": md,
            "excessive_speedup": bool(res.metadata.get("excessive_speedup")),
            "log_tail": "" if res.correctness else out.getvalue()[-1500:]}


async def run_ksdk(ev: Any, pair: Pair, correct_trials: int) -> dict[str, Any]:
    """ksdk's verdict, speedup and wall time for one pair (its evaluator's own defaults for timing)."""
    from ksdk.models import Candidate
    from ksdk.tasks import load_task

    t0 = time.perf_counter()
    task = load_task(pair.path, allow_torch_ops=["*"]) if pair.allow_torch else load_task(pair.path)
    task = task.model_copy(update={"correctness_trials": correct_trials})
    try:
        r = await ev.evaluate(task, Candidate(source=pair.source, language=ev.language))
    except Exception as e:  # noqa: BLE001 - recorded; the other pairs still run
        return {"verdict": "harness_error", "speedup": None, "wall_s": time.perf_counter() - t0,
                "detail": f"{type(e).__name__}: {e}"[:300]}
    wall = time.perf_counter() - t0
    msg = [ln for ln in (r.message or "").strip().splitlines() if ln.strip()]
    return {"verdict": "correct" if r.correct else (r.error_kind.value if r.error_kind else r.status.value),
            "speedup": r.speedup if r.correct else None, "wall_s": wall, "detail": msg[-1][:300] if msg else "",
            "stage": r.stage.value, "candidate_ms": r.candidate_timing.median_ms if r.candidate_timing else None,
            "baseline_ms": r.baseline_timing.median_ms if r.baseline_timing else None,
            "timing_method": r.candidate_timing.method if r.candidate_timing else None}


async def _warm(evaluate: Callable[..., Any], ev: Any) -> dict[str, float]:
    """One small pair through both harnesses before the measured ones (process start, CUDA, Triton's first compile)."""
    from ksdk_triton_nvidia.conformance import GOOD, TASK

    from ksdk.models import Candidate
    from ksdk.tasks import task_from_source

    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(TASK)
    pair = Pair("warm-up/conformance", "honest", Path(f.name), GOOD)
    kb = run_kb(evaluate, pair, 1, 10)
    t0 = time.perf_counter()
    await ev.evaluate(task_from_source("warm", TASK), Candidate(source=GOOD, language=ev.language))
    os.unlink(f.name)
    return {"kb_wall_s": kb["wall_s"], "kb_verdict": kb["verdict"], "ksdk_wall_s": time.perf_counter() - t0}


def _write(path: Optional[Path], meta: dict, rows: list[Row]) -> None:
    if path:
        data = {**meta, "summary": summary(rows),
                "rows": [{**asdict(r), "ratio": r.ratio} for r in rows]}
        path.write_text(json.dumps(data, indent=2, default=str))


async def run(a: argparse.Namespace, pairs: list[Pair]) -> list[Row]:
    import torch

    from ksdk.evaluation.local import LocalEvaluator

    evaluate = load_kernelbench(a.kb / "src")
    ev = LocalEvaluator("triton_nvidia", cache=False, workers=1, spares=a.spares)
    meta = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "kinds": a.kinds,
            "correct_trials": a.correct_trials, "kb_trials": a.kb_trials, "budget_s": a.budget_s}
    rows: list[Row] = []
    start = time.perf_counter()
    try:
        meta["warm_up"] = await _warm(evaluate, ev)
        print(f"warm-up: {meta['warm_up']}", flush=True)
        for pair in pairs:
            row = Row(pair.problem, pair.candidate)
            rows.append(row)
            if time.perf_counter() - start > a.budget_s:
                row.note = "not run: past the time budget"
                continue
            # ksdk first: KernelBench's evaluator runs in this process, and what it leaves on the device (6 GiB
            # for 19_ReLU) starved the next judge's memory
            row.ksdk = await run_ksdk(ev, pair, a.correct_trials)
            row.kb = run_kb(evaluate, pair, a.correct_trials, a.kb_trials)
            row.note = explain(pair, row.kb, row.ksdk)
            print(f"{pair.problem} {pair.candidate}: KB {row.kb['verdict']} {_num(row.kb['speedup'], '.3f')}x "
                  f"{row.kb['wall_s']:.1f}s | ksdk {row.ksdk['verdict']} {_num(row.ksdk['speedup'], '.3f')}x "
                  f"{row.ksdk['wall_s']:.1f}s | {row.note or 'agree'}", flush=True)
            _write(a.out, meta, rows)
    finally:
        await ev.close()
        _write(a.out, meta, rows)
    return rows


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path, default=ROOT / ".kb", help="folder with KernelBench/levelN and src/ (.kb)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="which pairs: cheat, self, honest (comma-separated)")
    ap.add_argument("--problems", nargs="*", default=[], help="only these problems: N/NUMBER, levelN/NUMBER or STEM")
    ap.add_argument("--self", dest="self_problems", nargs="*", default=SELF_DEFAULT,
                    help="problems (N/NUMBER) judged with the reference as candidate")
    ap.add_argument("--correct-trials", type=int, default=5, help="correctness trials, both harnesses")
    ap.add_argument("--kb-trials", type=int, default=100, help="KernelBench's num_perf_trials")
    ap.add_argument("--spares", type=int, default=None, help="ksdk's started-ahead candidate processes")
    ap.add_argument("--budget-s", type=float, default=420.0, help="start no pair after this many seconds")
    ap.add_argument("--out", type=Path, help="write the rows and the summary here (JSON, after every pair)")
    a = ap.parse_args(argv)
    a.kinds = tuple(k for k in a.kinds.split(",") if k)
    if set(a.kinds) - set(KINDS):
        ap.error(f"--kinds takes {', '.join(KINDS)}")
    import torch

    if not torch.cuda.is_available():
        print("kernelbench_peer.py needs a CUDA GPU: KernelBench's evaluator and ksdk's timing both run on one "
              "(torch.cuda.is_available() is False here)", file=sys.stderr)
        return 2
    pairs = build_pairs(a.kb / "KernelBench", a.kinds, a.self_problems, a.problems)
    print(f"{len(pairs)} pairs on {torch.cuda.get_device_name(0)}", flush=True)
    rows = asyncio.run(run(a, pairs))
    print(table(rows))
    print(json.dumps(summary(rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
