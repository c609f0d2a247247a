"""`ksdk eval TASK CANDIDATE`: one verdict, as a table or JSON; exits non-zero unless the candidate is correct."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ksdk.cli.main import app
from ksdk.errors import KsdkError
from ksdk.evaluation import make_evaluator


def _timing(st) -> str:
    return f"median {st.median_ms:.4f} ms, IQR {st.iqr_ms:.4f}, n={st.n}"


def render_result(result) -> None:
    """Print an EvalResult as a rich table; every text from the candidate, compiler or user is shown verbatim."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    head = result.verdict() if result.interpreted else f"{result.status.value} at {result.stage.value}"
    t = Table(title=escape(f"{result.task}: {head}"), show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")

    def row(name: str, value: str) -> None:
        t.add_row(escape(name), escape(value))

    row("backend", f"{result.backend} {result.backend_version}".strip())
    row("device", f"{result.device.name} ({result.device.kind})")
    if result.error_kind:
        row("error", result.error_kind.value + (f" at line {result.line}" if result.line else ""))
    if result.message:
        row("message", result.message)
    for o in result.outputs:
        row(f"output {o.index}", f"{o.dtype}{o.shape} max_abs={o.max_abs_error:.3g} "
                                 f"max_rel={o.max_rel_error:.3g} {'ok' if o.ok else o.problem}")
    if result.speedup is not None:
        ci = f" (95% interval {result.speedup_ci[0]:.3f}-{result.speedup_ci[1]:.3f})" if result.speedup_ci else ""
        row("speedup", f"{result.speedup:.3f}x{ci} over {result.baseline}")
    if result.candidate_timing:
        c = result.candidate_timing
        row("candidate", f"{_timing(c)}, outliers={c.outliers}")
    if result.baseline_timing:
        row("baseline", _timing(result.baseline_timing))
    for name, st in result.extra_baselines.items():
        row(f"baseline {name}", _timing(st))
    for name, st in result.cross_checks.items():
        row(name, _timing(st))
    if result.performance_skipped:
        row("performance", f"skipped: {result.performance_skipped}")
    for k in result.kernels:
        row(f"kernel {k.name}", f"regs={k.registers} spills={k.spills} smem={k.shared_mem_bytes} "
                                f"warps={k.num_warps} stages={k.num_stages}")
    for w in result.warnings:
        row("warning", w)
    Console(width=140).print(t)


def pick_backend(candidate: Path) -> str:
    """The one installed backend whose language takes the candidate's file type; else a KsdkError naming the
    `--backend` values that fit (or saying none does)."""
    from ksdk.registry import backends_for, discover

    fits = backends_for(str(candidate))
    if len(fits) == 1:
        return fits[0]
    if fits:
        raise KsdkError(f"several installed backends take {candidate.name}: pass one of "
                        + ", ".join(f"--backend {n}" for n in fits))
    installed = ", ".join(e.name for e in discover("backends") if e.loaded) or "none"
    raise KsdkError(f"no installed backend declares a language for files like {candidate.name} "
                    f"(installed: {installed}); pass --backend NAME (see `ksdk backends`)")


@app.command("eval")
def eval_(
    task: Path = typer.Argument(..., help="KernelBench-format task file"),
    candidate: Path = typer.Argument(..., help="candidate source file"),
    backend: Optional[str] = typer.Option(
        None, "--backend", "-b", help="backend name (see `ksdk backends`); default: the one installed backend whose "
                                      "language takes the candidate's file type"),
    as_json: bool = typer.Option(False, "--json", help="print the EvalResult as JSON"),
    evaluator: Optional[str] = typer.Option(
        None, "--evaluator", help="URL of a `ksdk serve` evaluation service (comma-separated: several, one backend)"),
):
    """Evaluate one candidate against a task and print the verdict."""
    import asyncio

    from ksdk.models import Candidate
    from ksdk.tasks import load_task

    t = load_task(task)
    if not candidate.is_file():
        raise KsdkError(f"candidate file not found: {candidate}")
    if backend is None and not evaluator:
        backend = pick_backend(candidate)
    ev = make_evaluator(backend, evaluator, **({} if evaluator else {"standby": False}))  # one candidate: no spare
    cand = Candidate(source=candidate.read_text(), language=ev.info().language)

    async def go():
        try:
            return await ev.evaluate(t, cand)
        finally:
            await ev.close()

    result = asyncio.run(go())
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        render_result(result)
    if not result.correct:
        raise typer.Exit(1)

