"""The end of a session: the leaders re-timed, the report written and the run's summary made from verified figures."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from pydantic import Field

from ksdk.archives.sqlite import SqliteArchive
from ksdk.evolution.best import best_of, short, warnings_of
from ksdk.evolution.config import RunConfig
from ksdk.evolution.retime import retime_run
from ksdk.interfaces.evaluator import Evaluator
from ksdk.models import Model, Task


class RunSummary(Model):
    """What a run (or one resumed session of it) achieved, and where its files are."""

    run_dir: str
    task: str
    backend: str
    mutator: str
    stop_reason: str
    interrupted: bool = False
    evaluated: int = 0
    valid: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    error: Optional[str] = Field(None, description="why the run could not do its job, with the fix: the mutator "
                                 "failed for good (e.g. a rejected API key), or no mutation succeeded in this "
                                 "session; the CLI then exits non-zero")
    best_id: Optional[str] = None
    best_speedup: Optional[float] = Field(None, description="the best's median speedup over its re-timing rounds "
                                          "(the search's single figure when it was not re-timed)")
    best_interval: Optional[tuple[float, float]] = Field(None, description="the interval of that median")
    best_text: str = Field("", description="the best's figure in words: baseline, interval, the search's figure")
    search_speedup: Optional[float] = Field(None, description="the best's speedup as the search measured it once")
    retimed: bool = Field(False, description="the best figure is a median over fresh evaluations")
    baseline: str = Field("", description="what the speedup is measured against")
    beside: list[str] = Field(default_factory=list, description="other baselines (PyTorch eager, torch.compile) "
                              "against the best, one line each")
    warnings: list[str] = Field(default_factory=list, description="a busy machine; a leader that failed re-timing")
    retime_s: float = Field(0.0, description="seconds this session spent re-timing the leaders")
    best_path: Optional[str] = None
    cost_usd: float = 0.0
    device_s: float = 0.0
    elapsed_s: float = 0.0
    session_s: float = 0.0
    session_evaluated: int = 0
    evaluator_busy: float = Field(0.0, description="share of worker time spent evaluating in this session")
    engine_ms_per_candidate: float = Field(0.0, description="the loop's own time per candidate, this session")
    files: dict[str, str] = Field(default_factory=dict)

    def line(self) -> str:
        """The one-line account of the run that ends its progress output."""
        best = "no timed correct candidate"
        if self.best_speedup is not None:
            best = f"best {self.best_text or f'{self.best_speedup:.3f}x'} -> {self.best_path}"
        reason = self.stop_reason
        if self.error:  # said in full once, by whoever reports `error` (the CLI's last line)
            reason = "mutator error" if reason.startswith("mutator error") else reason.split(" (last: ")[0]
        return (f"done ({reason}): {self.evaluated} candidates, {self.valid} valid, {best}; "
                f"report: {self.files.get('report', '-')}")

    def lines(self) -> list[str]:
        """`line()`, then one line per other baseline and per warning."""
        return [self.line(), *(f"  beside it: {b}" for b in self.beside), *(f"warning: {w}" for w in self.warnings)]


async def retime_leaders(config: RunConfig, archive: SqliteArchive, task: Task, evaluator: Evaluator,
                         evaluated: int, stopped: Callable[[], bool], say: Callable[[str], None]) -> float:
    """Re-time the run's leaders as its config says; the seconds it took (0 when skipped)."""
    import time

    t0 = time.monotonic()
    done = await retime_run(archive, task, evaluator, config.retime_top, config.retime_rounds, evaluated, stopped,
                            say)
    return time.monotonic() - t0 if done is not None else 0.0


def facts_of(config: RunConfig, archive: SqliteArchive, usage, reason: str) -> dict[str, str]:
    """The report's table of facts about a run."""
    best = best_of(archive)
    out = {
        "task": config.task_name, "backend": config.backend,
        "device": f"{config.device.name} ({config.device.kind})" if config.device else "?",
        "mutator": config.mutator + (f" ({', '.join(config.models)})" if config.models else ""),
        "stopped": reason, "candidates evaluated": str(usage.evaluated),
        "valid": f"{usage.valid} ({usage.valid / max(usage.evaluated, 1):.0%})",
        "mutation attempts": f"{archive.attempt_count} ({archive.failed_attempts} failed or duplicate)",
        "best speedup": f"{best.text()} ({best.entry.candidate.id})" if best and best.speedup is not None else "-",
        "baseline": best.baseline if best and best.baseline else "-",
    }
    for b in best.beside if best else []:
        out[short(b.label)] = b.text()
    for i, w in enumerate(warnings_of(archive), 1):
        out[f"warning {i}"] = w
    out.update({"cost": f"${usage.cost_usd:.4f}", "device time": f"{usage.device_s:.1f} s",
                "wall time": f"{usage.elapsed_s / 60:.1f} min", "ksdk": config.ksdk_version})
    return out


def summarize_run(config: RunConfig, run_dir: Path, archive: SqliteArchive, evo, evaluator: Evaluator, usage,
                  reason: str, error: Optional[str], files: dict[str, str], retime_s: float) -> RunSummary:
    """The RunSummary of a session, its best as verified."""
    from ksdk.evolution.loop import INTERRUPTED

    best = best_of(archive)
    workers = max(1, evaluator.workers)
    return RunSummary(
        run_dir=str(run_dir), task=config.task_name, backend=config.backend, mutator=config.mutator,
        stop_reason=reason, interrupted=reason == INTERRUPTED, evaluated=usage.evaluated, valid=usage.valid,
        attempts=archive.attempt_count, failed_attempts=archive.failed_attempts, error=error,
        best_id=best.entry.candidate.id if best else None, best_speedup=best.speedup if best else None,
        best_interval=best.interval if best else None, best_text=best.text() if best else "",
        search_speedup=best.search_speedup if best else None, retimed=bool(best and best.retimed),
        baseline=best.baseline if best else "", beside=[b.text() for b in best.beside] if best else [],
        warnings=warnings_of(archive), retime_s=retime_s, best_path=files.get("best"),
        cost_usd=usage.cost_usd, device_s=usage.device_s, elapsed_s=usage.elapsed_s, session_s=evo.session_s,
        session_evaluated=evo.session_evaluated,
        evaluator_busy=evo.eval_busy_s / (workers * evo.session_s) if evo.session_s else 0.0,
        engine_ms_per_candidate=1000 * evo.engine_s / max(evo.session_evaluated, 1), files=files,
    )
