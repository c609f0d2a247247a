"""`ksdk evolve` (start or resume a run) and `ksdk show RUN_DIR` (best, top-k, lineage)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ksdk.cli.main import app
from ksdk.errors import KsdkError

INTERRUPTED_EXIT = 130


@app.command("evolve")
def evolve_cmd(
    task: Optional[Path] = typer.Argument(None, help="KernelBench-format task file (omit with --resume)"),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="backend name (see `ksdk backends`)"),
    mutator: Optional[str] = typer.Option(None, "--mutator", "-m",
                                          help="mutator name: llm (the default), params, or a plugin's"),
    model: Optional[list[str]] = typer.Option(None, "--model", help="LLM as provider/name; repeat for an ensemble"),
    api_base: Optional[str] = typer.Option(None, "--api-base", help="OpenAI-compatible server URL (vLLM, Ollama); "
                                                                    "one that needs no key needs no --api-key"),
    api_key: Optional[str] = typer.Option(None, "--api-key", help="the LLM provider's API key (default: "
                                                                  "$KSDK_API_KEY, else the provider's own variable, "
                                                                  "e.g. OPENAI_API_KEY); never stored in the run"),
    option: Optional[list[str]] = typer.Option(None, "--mutator-option",
                                               help="KEY=VALUE passed to the mutator (JSON values), repeatable"),
    seed: Optional[Path] = typer.Option(None, "--seed", help="seed candidate file (default: TASK_seed.* beside it)"),
    max_candidates: Optional[int] = typer.Option(None, "--max-candidates", help="stop after N evaluated candidates"),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="stop after M minutes of wall time"),
    max_cost: Optional[float] = typer.Option(None, "--max-cost", help="stop once the mutator spent USD"),
    max_gpu_seconds: Optional[float] = typer.Option(None, "--max-gpu-seconds", help="stop after S device-seconds"),
    target_speedup: Optional[float] = typer.Option(None, "--target-speedup", help="stop at this speedup"),
    workers: Optional[int] = typer.Option(None, "--workers", help="evaluation workers (default: one per device)"),
    concurrency: Optional[int] = typer.Option(None, "--mutation-concurrency",
                                              help="mutations in flight (default: workers + 1)"),
    evaluator: Optional[list[str]] = typer.Option(
        None, "--evaluator", help="URL of a `ksdk serve` evaluation service (URL1,URL2: a pool of one backend); "
                                  "repeat to evolve the task on several backends at once, into RUN_DIR/<backend>"),
    random_seed: int = typer.Option(0, "--random-seed", help="seed of the selection's random choices"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="run directory to create (must be new or empty)"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="continue the run in this RUN_DIR"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no live progress, only the final summary line"),
    retime_top: Optional[int] = typer.Option(None, "--retime-top", help="leading candidates re-timed, with the "
                                             "seed, before the run reports its best (default: 3, fewer when that "
                                             "would cost more than half the session's evaluations; 0: none)"),
    retime_rounds: Optional[int] = typer.Option(None, "--retime-rounds", help="fresh evaluations of each, in turn "
                                                "(default: 5, as few as 2 in short sessions; 0 skips the re-timing)"),
    race: bool = typer.Option(True, "--race/--no-race", help="time a candidate only until it is clearly slower than "
                              "the best so far (its speedup's interval wholly below it; at least 5 rounds); "
                              "--no-race times every candidate to the usual precision"),
):
    """Evolve faster kernels for TASK, or continue a run with --resume RUN_DIR."""
    from ksdk.evolution.api import evolve, resume as resume_run

    for name, value in (("--max-candidates", max_candidates), ("--max-minutes", max_minutes),
                        ("--max-cost", max_cost), ("--max-gpu-seconds", max_gpu_seconds),
                        ("--target-speedup", target_speedup), ("--workers", workers),
                        ("--mutation-concurrency", concurrency)):
        if value is not None and value <= 0 and not (name == "--max-cost" and value == 0):
            raise KsdkError(f"{name} must be positive, got {value}")
    for name, value in (("--retime-top", retime_top), ("--retime-rounds", retime_rounds)):
        if value is not None and value < 0:
            raise KsdkError(f"{name} must be 0 or more, got {value}")
    budgets = dict(max_candidates=max_candidates, max_minutes=max_minutes, max_cost=max_cost,
                   max_gpu_seconds=max_gpu_seconds, target_speedup=target_speedup)
    if resume is not None:
        if task is not None:
            raise KsdkError("give either TASK (a new run) or --resume RUN_DIR, not both")
        fixed = [name for name, value in (
            ("--backend", backend), ("--mutator", mutator), ("--model", model), ("--api-base", api_base),
            ("--mutator-option", option), ("--seed", seed), ("--workers", workers),
            ("--mutation-concurrency", concurrency), ("--evaluator", evaluator), ("--out", out),
            ("--no-race", not race)) if value]
        if fixed:  # a resumed run keeps the settings in its run.json: say so rather than ignore them
            raise KsdkError(f"{', '.join(fixed)} cannot change on --resume: the run keeps the settings it started "
                            f"with (see {resume}/run.json); only budgets (--max-*, --target-speedup) may be given")
        summary = resume_run(resume, progress=not quiet, api_key=api_key, retime_top=retime_top,
                             retime_rounds=retime_rounds, **budgets)
    else:
        if task is None:
            raise KsdkError("missing TASK: `ksdk evolve TASK.py --backend NAME --out RUN_DIR`, "
                            "or `ksdk evolve --resume RUN_DIR`")
        urls = list(evaluator or [])
        if backend is None and len(urls) < 2:
            raise KsdkError("missing --backend NAME (see `ksdk backends` for those installed here)")
        if out is None:
            raise KsdkError("missing --out RUN_DIR: the folder where the run is stored (new or empty)")
        mutator = mutator or "llm"
        if mutator == "llm" and not model:
            raise KsdkError("the llm mutator needs --model provider/name (e.g. openai/gpt-4o-mini, or "
                            "hosted_vllm/NAME with --api-base URL); or use --mutator params, which needs no LLM")
        common = dict(mutator=mutator, models=list(model or []), api_base=api_base, api_key=api_key, seed=seed,
                      workers=workers,
                      mutation_concurrency=concurrency, random_seed=random_seed, retime_top=retime_top,
                      retime_rounds=retime_rounds, race=race,
                      mutator_options=_options(option or []), **budgets)
        if len(urls) > 1:
            _evolve_each(task, urls, out, common)
            return
        summary = evolve(task, backend=backend, out=out, evaluator_url=urls[0] if urls else None,
                         progress=not quiet, **common)
    if quiet:
        print("\n".join(summary.lines()), file=sys.stderr)
    if summary.interrupted:
        print(f"ksdk: interrupted; state saved. Continue with: ksdk evolve --resume {summary.run_dir}",
              file=sys.stderr)
        raise typer.Exit(INTERRUPTED_EXIT)
    if summary.error:
        raise KsdkError(summary.error)


def _evolve_each(task: Path, urls: list[str], out: Path, options: dict) -> None:
    """One sub-run per service (one per backend), concurrently; a line per backend at the end."""
    import asyncio

    from ksdk.evolution.api import evolve_each_async

    summaries = asyncio.run(evolve_each_async(task, evaluator_urls=urls, out=out, progress=False, **options))
    for s in summaries:
        best = (s.best_text or f"{s.best_speedup:.3f}x") if s.best_speedup is not None else "no timed correct candidate"
        print(f"{s.backend}: {s.evaluated} candidates, {s.valid} valid, best {best} -> {s.run_dir}"
              + (f"; error: {s.error}" if s.error else ""))
    if any(s.interrupted for s in summaries):
        raise typer.Exit(INTERRUPTED_EXIT)
    failed = [s.backend for s in summaries if s.error]
    if failed:
        raise KsdkError(f"the runs on {', '.join(failed)} failed (their errors are above)")


def _options(specs: list[str]) -> dict:
    out = {}
    for spec in specs:
        key, eq, raw = spec.partition("=")
        if not eq or not key.isidentifier():
            raise KsdkError(f"bad --mutator-option '{spec}': use KEY=VALUE, e.g. --mutator-option temperature=0.2")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw  # a bare string
    return out


@app.command("show")
def show_cmd(
    run_dir: Path = typer.Argument(..., help="a run directory written by `ksdk evolve`"),
    top: int = typer.Option(10, "--top", "-k", help="how many of the best candidates to list"),
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
    source: bool = typer.Option(False, "--source", help="also print the best candidate's source"),
):
    """Show a run: its best candidate, the top-k table and the best candidate's lineage."""
    from ksdk.archives.sqlite import SqliteArchive
    from ksdk.evolution.best import best_of, figure, warnings_of
    from ksdk.evolution.config import ARCHIVE_FILE, RunConfig
    from ksdk.evolution.report import verdict

    if top < 1:
        raise KsdkError(f"--top must be at least 1, got {top}")
    config = RunConfig.load(run_dir)
    archive = SqliteArchive(run_dir / ARCHIVE_FILE, selection=config.selection, must_exist=True)
    try:
        entries = archive.evaluated()
        best = archive.leaders(top)
        lineage = archive.lineage(best[0].candidate.id) if best else []
        reported = best_of(archive)

        def row(e):
            r, c = e.result, e.candidate
            rt = archive.retimings.get(c.id)
            return {"id": c.id, "parent": c.parent_ids[0] if c.parent_ids else None, "generation": c.generation,
                    "verdict": verdict(e), "speedup": r.speedup if r else None, "figure": figure(archive, e),
                    "retimed": None if rt is None else {
                        "median": rt.median, "interval": rt.interval, "level": rt.level, "speedups": rt.speedups,
                        "failed": rt.failure},
                    "median_ms": r.candidate_timing.median_ms if r and r.candidate_timing else None,
                    "mutator": c.mutation.mutator if c.mutation else "seed",
                    "model": c.mutation.model if c.mutation else None}

        data = {
            "run_dir": str(run_dir), "task": config.task_name, "backend": config.backend, "mutator": config.mutator,
            "models": config.models, "finished": config.finished, "stop_reason": config.stop_reason,
            "candidates": len(archive), "evaluated": len(entries),
            "valid": sum(1 for e in entries if e.result.correct), "attempts": archive.attempt_count,
            "failed_attempts": archive.failed_attempts, "pending": len(archive.pending()),
            "cost_usd": archive.cost_usd, "device_s": archive.device_s,
            "best": row(best[0]) if best else None, "top": [row(e) for e in best],
            "best_text": reported.text() if reported else None,
            "best_speedup": reported.speedup if reported else None,
            "baseline": reported.baseline if reported else None,
            "beside": [{"baseline": b.label, "ms": b.ms, "ratio": b.ratio, "text": b.text()}
                       for b in (reported.beside if reported else [])],
            "warnings": warnings_of(archive),
            "lineage": [row(e) for e in lineage],
        }
        if source and best:
            data["best_source"] = best[0].candidate.source
        if as_json:
            print(json.dumps(data, indent=2))
            return
        _print_show(data)
    finally:
        archive.close()


def _print_show(d: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ksdk.evolution.best import RANKING

    con = Console(width=140)
    state = "finished" if d["finished"] else f"not finished (continue: ksdk evolve --resume {d['run_dir']})"
    con.print(f"[bold]{escape(d['task'])}[/] " + escape(
        f"on {d['backend']} with {d['mutator']}" + (f" ({', '.join(d['models'])})" if d["models"] else "")
        + f": {state}" + (f", stopped: {d['stop_reason']}" if d["stop_reason"] else "")))
    con.print(f"candidates {d['evaluated']} evaluated ({d['valid']} valid, {d['pending']} pending), "
              f"attempts {d['attempts']} ({d['failed_attempts']} failed or duplicate), "
              f"${d['cost_usd']:.4f}, {d['device_s']:.1f} device-s")
    b = d["best"]
    if b is None:
        con.print("no correct candidate yet")
        return
    con.print(f"best: [bold]{escape(b['id'])}[/] " + escape(f"{d['best_text']} (generation {b['generation']})"))
    if d["baseline"]:
        con.print(escape(f"  baseline: {d['baseline']}"))
    for x in d["beside"]:
        con.print(escape(f"  beside it: {x['text']}"))
    for w in d["warnings"]:
        con.print(escape(f"warning: {w}"), style="yellow")
    t = Table(title=f"top {len(d['top'])}", caption=RANKING)
    for col in ("#", "id", "speedup", "median ms", "gen", "parent", "mutation"):
        t.add_column(col)
    for i, r in enumerate(d["top"], 1):
        t.add_row(str(i), escape(r["id"]), escape(r["figure"]),
                  f"{r['median_ms']:.4f}" if r["median_ms"] is not None else "-", str(r["generation"]),
                  escape(r["parent"] or "-"), escape(r["mutator"] + (f" / {r['model']}" if r["model"] else "")))
    con.print(t)
    con.print("lineage of the best (seed first):")
    for r in d["lineage"]:
        sp = f"{r['speedup']:.3f}x" if r["speedup"] is not None else "-"
        con.print(escape(f"  {r['id']}  {r['verdict']:<28} {sp:>9}  {r['mutator']}"))
    if "best_source" in d:
        con.print(d["best_source"], markup=False, highlight=False)
