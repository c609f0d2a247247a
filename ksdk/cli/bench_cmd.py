"""`ksdk bench SUITE`: a suite of KernelBench-format problems evolved, checked against given candidates, or checked
against itself; `ksdk bench --compare A B ...` puts bench results side by side. The logic is in ksdk.bench."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ksdk.cli.main import app
from ksdk.errors import KsdkError

INTERRUPTED_EXIT = 130


Opt = typer.Option


@app.command("bench")
def bench_cmd(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="SUITE: a folder of task files or a KernelBench checkout's levelN folders (with --compare: bench "
             "output folders)")] = None,
    evolve: Annotated[bool, Opt("--evolve", help="evolve each problem (one run directory per problem)")] = False,
    candidates: Annotated[Path | None, Opt(
        "--candidates", help="evaluate the files of DIR matched by name (DIR/levelN/STEM.EXT or DIR/STEM.EXT for "
                             "problem levelN/STEM.py)")] = None,
    self_check: Annotated[bool, Opt("--self-check", help="evaluate each reference as its own candidate: it must "
                                    "come out correct at about 1.00x (needs a Python backend)")] = False,
    compare: Annotated[bool, Opt("--compare", help="show the bench results given as PATHS side by side")] = False,
    resume: Annotated[Path | None, Opt("--resume", help="continue the bench in this --out folder")] = None,
    backend: Annotated[str | None, Opt("--backend", "-b", help="backend name (see `ksdk backends`)")] = None,
    evaluator: Annotated[list[str] | None, Opt(
        "--evaluator", help="URL of a `ksdk serve` (URL1,URL2: one pool); repeat to spread problems over several")
    ] = None,
    ray: Annotated[bool, Opt("--ray", help="evaluate on Ray actors (one GPU each)")] = False,
    ray_address: Annotated[str | None, Opt("--ray-address", help="Ray cluster address (default: local)")] = None,
    ray_resource: Annotated[list[str] | None, Opt(
        "--ray-resource", help="--ray: NAME=AMOUNT each actor asks for instead of one GPU (e.g. maca=1); "
        "repeatable")] = None,
    devices: Annotated[str | None, Opt("--devices", help="local device indices, e.g. 0,1 (default: all)")] = None,
    workers: Annotated[int | None, Opt("--workers", help="local worker processes per device (default 1)")] = None,
    level: Annotated[list[int] | None, Opt("--level", help="only problems of this level; repeatable")] = None,
    problem: Annotated[list[str] | None, Opt("--problem", help="only problems whose name matches (a shell pattern "
                                             "such as '*Softmax*', or a problem number); repeatable")] = None,
    mutator: Annotated[str, Opt("--mutator", "-m", help="--evolve: mutator (llm, params, a plugin's)")] = "params",
    model: Annotated[list[str] | None, Opt("--model", help="--evolve: LLM as provider/name; repeatable")] = None,
    api_base: Annotated[str | None, Opt("--api-base", help="--evolve: OpenAI-compatible server URL")] = None,
    option: Annotated[list[str] | None, Opt("--mutator-option", help="--evolve: KEY=VALUE (JSON values)")] = None,
    seeds: Annotated[Path | None, Opt("--seeds", help="--evolve: seed files matched by name like --candidates "
                                      "(default: the seed beside each task)")] = None,
    max_candidates: Annotated[int | None, Opt("--max-candidates", help="--evolve: per problem")] = None,
    max_minutes: Annotated[float | None, Opt("--max-minutes", help="--evolve: per problem")] = None,
    max_cost: Annotated[float | None, Opt("--max-cost", help="--evolve: USD per problem")] = None,
    max_gpu_seconds: Annotated[float | None, Opt("--max-gpu-seconds", help="--evolve: per problem")] = None,
    target_speedup: Annotated[float | None, Opt("--target-speedup", help="--evolve: stop a problem here")] = None,
    random_seed: Annotated[int, Opt("--random-seed", help="--evolve: seed of the selection's random choices")] = 0,
    retime_top: Annotated[int | None, Opt("--retime-top", min=0, help="--evolve: leading candidates of each run "
                                          "re-timed, with the seed, before its best counts (as ksdk evolve; 0: "
                                          "none)")] = None,
    retime_rounds: Annotated[int | None, Opt("--retime-rounds", min=0, help="--evolve: fresh evaluations of each "
                                             "(0: the search's single figure counts)")] = None,
    out: Annotated[Path | None, Opt("--out", "-o", help="output folder (run again into it to continue)")] = None,
    label: Annotated[str, Opt("--label", help="name of this bench in --compare tables")] = "",
    as_json: Annotated[bool, Opt("--json", help="print the summary (or the comparison) as JSON")] = False,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="no live progress")] = False,
):
    """Run a suite of KernelBench-format problems and report correctness, fast_p, speedups and AMSR."""
    paths = list(paths or [])
    if compare:
        if len(paths) < 1:
            raise KsdkError("--compare needs bench output folders: `ksdk bench --compare OUT_A OUT_B`")
        _compare(paths, as_json)
        return
    evaluators = {"evaluator_urls": list(evaluator or []), "ray": ray, "ray_address": ray_address,
                  "ray_resources": _resources(ray_resource or []),
                  "devices": _devices(devices), "workers": workers, "progress": not quiet}
    if workers is not None and workers < 1:
        raise KsdkError(f"--workers must be positive, got {workers}")
    budgets = {"max_candidates": max_candidates, "max_minutes": max_minutes, "max_cost": max_cost,
               "max_gpu_seconds": max_gpu_seconds, "target_speedup": target_speedup}
    budgets = {k: v for k, v in budgets.items() if v is not None}
    if resume is not None:
        fixed = [name for name, value in (
            ("SUITE", paths), ("--evolve", evolve), ("--candidates", candidates), ("--self-check", self_check),
            ("--out", out), ("--backend", backend), ("--level", level), ("--problem", problem),
            ("--mutator", mutator != "params"), ("--model", model), ("--api-base", api_base),
            ("--mutator-option", option), ("--seeds", seeds), ("--label", label),
            ("--retime-top", retime_top is not None), ("--retime-rounds", retime_rounds is not None),
            *((f"--{k.replace('_', '-')}", True) for k in budgets)) if value]
        if fixed:
            raise KsdkError(f"--resume {resume} continues that bench with the settings it started with (see "
                            f"{resume}/bench.json): {', '.join(fixed)} cannot be given with it")
        from ksdk.bench.runner import resume_bench

        summary = resume_bench(resume, **evaluators)
    else:
        from ksdk.bench.runner import bench
        from ksdk.cli.evolve_cmd import _options

        if len(paths) != 1:
            raise KsdkError("give one SUITE: `ksdk bench SUITE (--evolve | --candidates DIR | --self-check) "
                            "--backend NAME --out OUT`" if not paths else
                            f"give one SUITE, got {len(paths)} paths (to compare benches: --compare)")
        modes = [m for m, on in (("evolve", evolve), ("candidates", candidates is not None),
                                 ("self_check", self_check)) if on]
        if len(modes) != 1:
            raise KsdkError("choose one mode: --evolve, --candidates DIR or --self-check"
                            + (f" (got {', '.join('--' + m.replace('_', '-') for m in modes)})" if modes else ""))
        if out is None:
            raise KsdkError("missing --out OUT: the folder where the bench is stored (rerun into it to continue)")
        for k, v in budgets.items():
            if v < 0 or (v == 0 and k != "max_cost"):
                raise KsdkError(f"--{k.replace('_', '-')} must be positive, got {v:g}")
        if modes[0] == "evolve" and mutator == "llm" and not model:
            raise KsdkError("the llm mutator needs --model provider/name; or use --mutator params, which needs no LLM")
        summary = bench(paths[0], mode=modes[0], out=out, backend=backend, levels=list(level or []),
                        problems=list(problem or []), candidates=candidates, seeds=seeds, mutator=mutator,
                        models=list(model or []), api_base=api_base, mutator_options=_options(option or []),
                        budgets=budgets, random_seed=random_seed, label=label, retime_top=retime_top,
                        retime_rounds=retime_rounds, **evaluators)
    _print_summary(summary, as_json)
    if summary.interrupted:
        print(f"ksdk: bench interrupted; finished problems are stored. Continue with: ksdk bench --resume "
              f"{summary.out}", file=sys.stderr)
        raise typer.Exit(INTERRUPTED_EXIT)
    if summary.config.mode == "self_check" and summary.flags:
        raise typer.Exit(1)  # the harness did not verify itself: a CI job must see it


def _devices(spec: str | None) -> list[int] | None:
    if spec is None:
        return None
    try:
        return [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise KsdkError(f"bad --devices '{spec}': give device indices such as 0,1") from None


def _print_summary(s, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from ksdk.bench.report import METRIC_COLUMNS, metric_cells

    if as_json:
        print(s.model_dump_json(indent=2))
        return
    con = Console(width=160)
    t = Table(title=f"ksdk bench: {Path(s.config.suite).name} ({s.config.describe()})")
    t.add_column("level")
    for col in METRIC_COLUMNS:
        t.add_column(col, justify="right")
    for k, m in s.metrics.items():
        t.add_row(k, *metric_cells(m))
    con.print(t)
    for line in s.notes + [f"flag: {f}" for f in s.flags]:
        con.print(line, soft_wrap=True, markup=False)
    con.print(f"{sum(1 for r in s.records)} of {s.problems_total} problems done"
              + (f", {len(s.pending)} pending" if s.pending else "") + f"; files: {', '.join(s.files.values())}",
              soft_wrap=True, markup=False)


def _compare(paths: list[Path], as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from ksdk.bench.report import compare_rows
    from ksdk.bench.store import load_summary

    summaries = [load_summary(p) for p in paths]
    header, rows = compare_rows(summaries)
    if as_json:
        import json

        print(json.dumps({"columns": header[1:], "rows": {r[0]: r[1:] for r in rows}}, indent=2))
        return
    t = Table(title="ksdk bench --compare")
    for h in header:
        t.add_column(h, overflow="fold")
    for r in rows:
        t.add_row(*r)
    Console(width=160).print(t)


def _resources(items: list[str]) -> dict[str, float]:
    """--ray-resource NAME=AMOUNT values as a dict; a clear error for anything else."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, amount = item.partition("=")
        try:
            value = float(amount) if sep and name.strip() else -1.0
        except ValueError:
            value = -1.0
        if value <= 0:
            raise KsdkError(f"--ray-resource {item!r}: use NAME=AMOUNT with a positive amount, e.g. --ray-resource "
                            "maca=1")
        out[name.strip()] = value
    return out
