"""A bench's output folder: its settings (bench.json), one record per finished problem (problems/*.json), and the
summary. Every file is written atomically, so a bench killed at any moment keeps each problem it finished."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from ksdk._version import __version__
from ksdk.bench.metrics import Metrics, Outcome, compute
from ksdk.bench.suite import Problem
from ksdk.errors import RunDirError
from ksdk.models import Model

CONFIG_FILE = "bench.json"
SUMMARY_FILE = "summary.json"
RECORDS_DIR = "problems"
RUNS_DIR = "runs"
Mode = Literal["evolve", "candidates", "self_check"]
# Verdicts a record can carry; the last two are the harness's, and a rerun of the bench tries those problems again.
CORRECT, INCORRECT, NO_CANDIDATE, INFRA = "correct", "incorrect", "no candidate", "infra_error"
DOES_NOT_FIT = "does not fit"  # the problem's inputs and outputs do not fit this device: no candidate's failure
INTERPRETED = "correct in an interpreter"  # not run on a device: never counted as a verified result
SELF_CHECK_BAND = (0.97, 1.03)


class BenchConfig(Model):
    """What a bench runs: the suite and its filters, the mode and its settings. Rerunning a bench into the same
    folder continues it, and only with the same settings (`identity`)."""

    suite: str
    mode: Mode
    levels: list[int] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list, description="name patterns (--problem)")
    backend: str
    candidates_dir: str | None = None
    seeds_dir: str | None = None
    mutator: str | None = None
    models: list[str] = Field(default_factory=list)
    api_base: str | None = None
    mutator_options: dict[str, Any] = Field(default_factory=dict)
    budgets: dict[str, float] = Field(default_factory=dict, description="per problem: max_candidates, max_minutes, "
                                      "max_cost, max_gpu_seconds, target_speedup (those given)")
    random_seed: int = 0
    retime_top: int | None = Field(None, ge=0, description="--evolve: leading candidates re-timed (with the seed) "
                                   "per problem; None: as `ksdk evolve` sizes it")
    retime_rounds: int | None = Field(None, ge=0, description="--evolve: fresh evaluations of each; 0: the search's "
                                      "figure counts")
    label: str = ""
    ksdk_version: str = __version__
    created_at: float = Field(default_factory=time.time)

    def identity(self) -> dict[str, Any]:
        """The settings a continued bench must share with the one it continues."""
        return self.model_dump(exclude={"label", "ksdk_version", "created_at"})

    def describe(self) -> str:
        """One line: mode, backend and, for --evolve, the mutator, models and budget."""
        text = f"{self.mode.replace('_', '-')} on {self.backend}"
        if self.mode == "evolve":
            text += f", mutator {self.mutator}" + (f" ({', '.join(self.models)})" if self.models else "")
            text += ", per problem: " + (", ".join(f"{k}={v:g}" for k, v in self.budgets.items()) or "defaults")
        return text


class ProblemRecord(Model):
    """How one problem came out: verdict, best verified speedup, and what it took."""

    id: str
    name: str
    level: int | None = None
    path: str
    verdict: str = Field(description="'correct', 'incorrect', 'no candidate', 'does not fit' (this device is too "
                         "small for the problem) or 'infra_error' (the harness failed)")
    correct: bool = False
    speedup: float | None = Field(None, description="best verified speedup (--evolve: the winner's median over its "
                                  "re-timing rounds); None when untimed or incorrect")
    speedup_interval: tuple[float, float] | None = Field(None, description="--evolve: the interval of that median")
    search_speedup: float | None = Field(None, description="--evolve: the winner's figure in the search's one "
                                         "evaluation")
    baseline: str = Field("", description="what the speedup is measured against")
    warnings: list[str] = Field(default_factory=list, description="--evolve: the run's warnings (a busy machine)")
    stage: str | None = None
    error_kind: str | None = None
    message: str = ""
    performance_skipped: str | None = None
    candidate_ms: float | None = None
    baseline_ms: float | None = None
    peak_memory_bytes: int | None = Field(None, description="device memory the evaluation added at its peak, both "
                                          "processes and their contexts, when the backend can say (EvalResult."
                                          "device.extra['device_peak_memory_bytes'])")
    peak_by_role: dict[str, int] | None = Field(None, description="whose that peak was: bytes the judge, the "
                                                "candidate's processes and others (spares started ahead of need) "
                                                "held at the peak above what each held at the start")
    peak_during: str | None = Field(None, description="what the evaluation was doing at that peak (stage: span)")
    clock: dict[str, Any] | None = Field(None, description="how the judge's clock saw the candidate's batches "
                                         "(EvalResult.device.extra['clock']): a record")
    io_bytes: int | None = Field(None, description="one trial's inputs plus outputs (EvalResult.device.extra["
                                 "'inputs_outputs_bytes'])")
    device: str = ""
    where: str = Field("", description="the evaluator it ran on (device, service URL, Ray)")
    wall_s: float = 0.0
    candidate: str | None = Field(None, description="the candidate file (or, for --evolve, the best one)")
    run_dir: str | None = None
    evaluated: int | None = Field(None, description="--evolve: candidates evaluated")
    valid: int | None = None
    cost_usd: float = 0.0
    device_s: float = 0.0
    stop_reason: str | None = None
    flag: str | None = Field(None, description="--self-check: why this speedup is suspicious")
    speedup_ci: tuple[float, float] | None = Field(None, description="95% interval of the speedup")
    stages: dict[str, float] = Field(default_factory=dict, description="seconds per stage of the (best) evaluation "
                                     "and per part within them (EvalResult.stages)")
    finished_at: float = Field(default_factory=time.time)

    @property
    def level_key(self) -> str:
        return f"level{self.level}" if self.level is not None else "unlevelled"

    @property
    def outcome(self) -> Outcome:
        return self.correct, self.speedup if self.correct else None


class BenchSummary(Model):
    """A bench's result: settings, figures per level and overall, and every problem's record."""

    config: BenchConfig
    out: str
    device: str = ""
    evaluators: list[str] = Field(default_factory=list)
    problems_total: int = 0
    finished: bool = False
    interrupted: bool = False
    pending: list[str] = Field(default_factory=list, description="problems without a verdict yet")
    metrics: dict[str, Metrics] = Field(default_factory=dict, description="'all' and one per level")
    records: list[ProblemRecord] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list, description="self-check speedups outside the band, and the like")
    notes: list[str] = Field(default_factory=list)
    session_s: float = 0.0
    files: dict[str, str] = Field(default_factory=dict)


def metrics_by_level(records: list[ProblemRecord]) -> dict[str, Metrics]:
    """'all', then one entry per level present (only when there are several)."""
    def group(rs):
        fit = [r for r in rs if r.verdict not in (DOES_NOT_FIT, INTERPRETED)]  # counted apart
        return compute([r.outcome for r in fit], infra_errors=sum(1 for r in fit if r.verdict == INFRA),
                       does_not_fit=sum(1 for r in rs if r.verdict == DOES_NOT_FIT),
                       interpreted=sum(1 for r in rs if r.verdict == INTERPRETED))

    out = {"all": group(records)}
    keys = sorted({r.level_key for r in records}, key=lambda k: (k == "unlevelled", len(k), k))
    if len(keys) > 1:
        for k in keys:
            out[k] = group([r for r in records if r.level_key == k])
    return out


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


class BenchStore:
    """The output folder of one bench."""

    def __init__(self, out: str | Path):
        self.out = Path(out)

    @property
    def exists(self) -> bool:
        return (self.out / CONFIG_FILE).is_file()

    def check_new(self) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise RunDirError(f"--out {self.out} exists and is not a folder; choose another path")
        if self.out.is_dir() and any(self.out.iterdir()) and not self.exists:
            raise RunDirError(f"{self.out} exists, is not empty and holds no bench; choose a new --out folder")

    def load_config(self) -> BenchConfig:
        path = self.out / CONFIG_FILE
        if not path.is_file():
            raise RunDirError(f"{self.out} holds no bench ({CONFIG_FILE} missing); give the --out of a `ksdk bench`")
        try:
            return BenchConfig.model_validate(json.loads(path.read_text()))
        except (ValueError, ValidationError) as e:
            raise RunDirError(f"{path} is damaged or from an incompatible ksdk: {str(e).splitlines()[0]}") from None

    def save_config(self, config: BenchConfig) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / RECORDS_DIR).mkdir(exist_ok=True)
        _write_atomic(self.out / CONFIG_FILE, config.model_dump_json(indent=2))

    def record_path(self, problem: Problem) -> Path:
        return self.out / RECORDS_DIR / (problem.id.replace("/", "__") + ".json")

    def run_dir(self, problem: Problem) -> Path:
        return self.out / RUNS_DIR / problem.id

    def record(self, problem: Problem) -> ProblemRecord | None:
        """The stored record of a problem, or None (none yet, or an unreadable one from a kill mid-write)."""
        path = self.record_path(problem)
        try:
            return ProblemRecord.model_validate_json(path.read_text())
        except (OSError, ValueError):
            return None

    def save_record(self, record: ProblemRecord, problem: Problem) -> None:
        _write_atomic(self.record_path(problem), record.model_dump_json(indent=2))

    def save_summary(self, summary: BenchSummary) -> Path:
        path = self.out / SUMMARY_FILE
        _write_atomic(path, summary.model_dump_json(indent=2))
        return path


def load_summary(path: str | Path) -> BenchSummary:
    """A bench's summary from its output folder or its summary.json."""
    p = Path(path)
    if p.is_dir():
        p = p / SUMMARY_FILE
    if not p.is_file():
        raise RunDirError(f"no bench summary at {p}: give the --out folder of a `ksdk bench` (or its {SUMMARY_FILE})")
    try:
        return BenchSummary.model_validate_json(p.read_text())
    except (ValueError, ValidationError) as e:
        raise RunDirError(f"{p} is damaged or from an incompatible ksdk: {str(e).splitlines()[0]}") from None
