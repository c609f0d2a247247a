"""`ksdk eval TASK CANDIDATE`: one verdict, as a table or JSON; exits non-zero unless the candidate is correct."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ksdk.cli.main import app
from ksdk.errors import KsdkError
from ksdk.registry import make_evaluator


def _timing(st) -> str:
    return f"median {st.median_ms:.4f} ms, IQR {st.iqr_ms:.4f}, n={st.n}"


def render_result(result) -> None:
    """Print an EvalResult as a rich table."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{result.task}: {result.status.value} at {result.stage.value}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    t.add_row("backend", f"{result.backend} {result.backend_version}".strip())
    t.add_row("device", f"{result.device.name} ({result.device.kind})")
    if result.error_kind:
        t.add_row("error", result.error_kind.value + (f" at line {result.line}" if result.line else ""))
    if result.message:
        t.add_row("message", result.message)
    for o in result.outputs:
        t.add_row(f"output {o.index}", f"{o.dtype}{o.shape} max_abs={o.max_abs_error:.3g} "
                                      f"max_rel={o.max_rel_error:.3g} {'ok' if o.ok else o.problem}")
    if result.speedup is not None:
        t.add_row("speedup", f"{result.speedup:.3f}x over {result.baseline}")
    if result.candidate_timing:
        c = result.candidate_timing
        t.add_row("candidate", f"{_timing(c)}, outliers={c.outliers}")
    if result.baseline_timing:
        t.add_row("baseline", _timing(result.baseline_timing))
    for name, st in result.extra_baselines.items():
        t.add_row(f"baseline {name}", _timing(st))
    for name, st in result.cross_checks.items():
        t.add_row(name, _timing(st))
    if result.performance_skipped:
        t.add_row("performance", f"skipped: {result.performance_skipped}")
    for k in result.kernels:
        t.add_row(f"kernel {k.name}", f"regs={k.registers} spills={k.spills} smem={k.shared_mem_bytes} "
                                       f"warps={k.num_warps} stages={k.num_stages}")
    for w in result.warnings:
        t.add_row("warning", w)
    Console(width=140).print(t)


@app.command("eval")
def eval_(
    task: Path = typer.Argument(..., help="KernelBench-format task file"),
    candidate: Path = typer.Argument(..., help="candidate source file"),
    backend: str = typer.Option("triton_nvidia", "--backend", "-b", help="backend name (see `ksdk backends`)"),
    as_json: bool = typer.Option(False, "--json", help="print the EvalResult as JSON"),
    evaluator: Optional[str] = typer.Option(None, "--evaluator", help="URL of a `ksdk serve` evaluation service (comma-separated: several, one backend)"),
):
    """Evaluate one candidate against a task and print the verdict."""
    from ksdk.models import Candidate
    from ksdk.tasks import load_task

    t = load_task(task)
    if not candidate.is_file():
        raise KsdkError(f"candidate file not found: {candidate}")
    ev = make_evaluator(backend, evaluator, **({} if evaluator else {"standby": False}))  # one candidate: no spare
    cand = Candidate(source=candidate.read_text(), language=getattr(ev, "language", "") or "")
    import asyncio

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
