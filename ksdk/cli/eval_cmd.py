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


def render_result(result, load: Optional[str] = None) -> None:
    """Print an EvalResult as a rich table; every text from the candidate, compiler or user is shown verbatim, and
    `load` (machine_load's line, when the machine was busy) last."""
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
        row(f"kernel {k.name}", kernel_facts(k))
    for w in result.warnings:
        row("warning", w)
    if load:
        row("load", load)
    Console(width=140).print(t)


def kernel_facts(k) -> str:
    """The compiler's facts that this backend gives (a CPU has no registers or warps to report), as name=value."""
    facts = [(n, v) for n, v in (("registers", k.registers), ("spills", k.spills), ("shared_mem", k.shared_mem_bytes),
                                 ("num_warps", k.num_warps), ("num_stages", k.num_stages)) if v is not None]
    facts += [(n, v) for n, v in k.extra.items() if isinstance(v, (int, float, str)) and len(str(v)) < 200]
    return " ".join(f"{n}={v}" for n, v in facts) or "compiled (no compiler facts given)"


def load_note(load1: float, cpus: int) -> Optional[str]:
    """A line naming load as load when other work kept this machine's cores busy (1-minute load average at least
    three quarters of the cores, and at least 1), else None."""
    if load1 < max(1.0, 0.75 * cpus):
        return None
    return (f"this machine was busy while it was timed (load average {load1:.1f} on {cpus} cores): times vary with "
            "load; the speedup pairs candidate and baseline in turn and holds better than either time")


def machine_load() -> Optional[str]:
    """load_note for this machine now, None where the load average is unknown."""
    import os

    try:
        return load_note(os.getloadavg()[0], os.cpu_count() or 1)
    except OSError:
        return None


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

    load = None if evaluator else machine_load()  # the others' load before ours, on this machine only
    result = asyncio.run(go())
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        render_result(result, load)
    if not result.correct:
        raise typer.Exit(1)

