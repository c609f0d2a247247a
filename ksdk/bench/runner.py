"""Run a suite: every problem evaluated (given candidates, the reference itself) or evolved (one run directory per
problem), spread over the evaluators given, each finished problem stored at once so a killed bench continues."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ksdk.bench.progress import BenchProgress
from ksdk.bench.store import (
    CORRECT,
    INCORRECT,
    DOES_NOT_FIT,
    INFRA,
    INTERPRETED,
    NO_CANDIDATE,
    SELF_CHECK_BAND,
    BenchConfig,
    BenchStore,
    BenchSummary,
    Mode,
    ProblemRecord,
    metrics_by_level,
)
from ksdk.bench.suite import Problem, discover, match_file
from ksdk.languages import Language
from ksdk.errors import KsdkError, PluginError
from ksdk.interfaces.evaluator import Evaluator
from ksdk.evaluation import verdict as verdicts
from ksdk.models import Candidate, EvalResult, Mutation, Status

BUDGET_NAMES = ("max_candidates", "max_minutes", "max_cost", "max_gpu_seconds", "target_speedup")
AMSR_NOTE = ("AMSR is the average over all problems of each one's best verified speedup; a problem without a correct "
             "kernel counts as 0 in 'AMSR (fail=0)' and as 1x (the reference kept) in 'AMSR (fail=1x)'")
SELF_CHECK_SUFFIX = "\n\n# ksdk bench --self-check: the reference is its own candidate\nModelNew = Model\n"


@dataclass
class Lane:
    """One evaluator the bench feeds, and the name its records give for where they ran."""

    evaluator: Evaluator
    label: str

    def slots(self, mode: Mode) -> int:
        """Problems it holds at once: one evolution (whose loop keeps every worker busy), else one per worker."""
        return 1 if mode == "evolve" else max(1, self.evaluator.workers)


def label_of(e: Evaluator, i: int) -> str:
    """A name for an evaluator someone built: its service URL(s), else its kind and place in the list."""
    urls = [getattr(m, "url", "") for m in getattr(e, "members", [e])]
    return ",".join(urls) if all(urls) else f"{type(e).__name__} {i}"


async def make_lanes(backend: str | None, evaluator_urls: Sequence[str] = (), ray: bool = False,
                     ray_address: str | None = None, devices: Sequence[int] | None = None,
                     workers: int | None = None, ray_resources: dict[str, float] | None = None) -> list[Lane]:
    """The evaluators a bench spreads its problems over (the caller closes them): one per `ksdk serve` URL (URL1,URL2
    is one pool), one Ray pool (actors asking for one GPU each, or for `ray_resources`), or else one local evaluator
    per device of `backend` (`workers` each, default 1). All must run one backend."""
    from ksdk.evaluation import make_evaluator
    from ksdk.registry import load, load_backend

    made: list[Lane] = []
    try:
        if evaluator_urls:
            made = [Lane(make_evaluator(backend, url), url) for url in evaluator_urls]
            names = sorted({lane.evaluator.info().backend for lane in made})
            if len(names) > 1 or (backend and names != [backend]):
                raise KsdkError(f"the --evaluator services run {', '.join(names)}"
                                + (f", not --backend {backend}" if backend and names != [backend] else "")
                                + ": a bench compares problems on one backend; run one bench per backend")
        elif ray:
            if not backend:
                raise KsdkError("--ray needs --backend NAME (the backend each Ray actor runs)")
            made = [Lane(load("evaluators", "ray")(backend, address=ray_address, resources=ray_resources or None),
                         f"ray {ray_address or 'local'}")]
        else:
            if not backend:
                raise KsdkError("missing --backend NAME (see `ksdk backends`), or --evaluator URL of a `ksdk serve`")
            avail = load_backend(backend).probe()
            names = {d.index: d.name for d in avail.devices} if avail.available else {}
            extra = {"workers": workers} if workers else {}
            for d in devices if devices is not None else (sorted(names) or [0]):
                if d in names:
                    label = f"device {d} ({names[d]})"
                else:  # no device of the backend here: its fallback (Triton's interpreter) runs the candidates
                    label = f"{avail.fallback.split(':')[0]}" if avail.fallback else f"device {d}"
                made.append(Lane(make_evaluator(backend, devices=[d], **extra), label))
    except BaseException:
        for lane in made:
            await lane.evaluator.close()
        raise
    labels = [lane.label for lane in made]
    for i, lane in enumerate(made):  # two lanes on one device (--devices 0,0) get told apart
        if labels.count(lane.label) > 1:
            lane.label += f" #{labels[:i].count(lane.label) + 1}"
    return made


def language_of(evaluator: Evaluator) -> Language:
    """The candidate language of an evaluator (its own declaration, else its registered backend's)."""
    lang = evaluator.info().language
    if not lang.name:
        from ksdk.registry import load_backend

        try:
            lang = Language.of(load_backend(evaluator.info().backend).language)
        except PluginError:
            pass
    return lang


def extensions_of(language: Language) -> tuple[str, ...]:
    """The file extensions of a language's candidates (its name when it declares none)."""
    return tuple(language.extensions) or ("." + (language.name or "txt"),)


def is_python(language: Language) -> bool:
    """Whether candidates of this language are Python modules (a reference can then be its own candidate)."""
    return language.name == "python" or ".py" in extensions_of(language)


def bench(suite: str | Path, *, mode: Mode, out: str | Path, backend: str | None = None,
          evaluators: list[Evaluator] | None = None, **options: Any) -> BenchSummary:
    """Run (or continue) a bench; see `bench_async` for the arguments."""
    return asyncio.run(bench_async(suite, mode=mode, out=out, backend=backend, evaluators=evaluators, **options))


async def bench_async(suite: str | Path, *, mode: Mode, out: str | Path, backend: str | None = None,
                      evaluators: list[Evaluator] | None = None, levels: Sequence[int] = (),
                      problems: Sequence[str] = (), candidates: str | Path | None = None,
                      seeds: str | Path | None = None, mutator: str = "params", models: Sequence[str] = (),
                      api_base: str | None = None, mutator_options: dict[str, Any] | None = None,
                      budgets: dict[str, float] | None = None, random_seed: int = 0, label: str = "",
                      retime_top: int | None = None, retime_rounds: int | None = None,
                      evaluator_urls: Sequence[str] = (), ray: bool = False, ray_address: str | None = None,
                      ray_resources: dict[str, float] | None = None,
                      devices: Sequence[int] | None = None, workers: int | None = None,
                      progress: bool = True, handle_signals: bool = True) -> BenchSummary:
    """Run the problems of `suite` in one `mode` into the folder `out`; a folder that holds a bench with the same
    settings is continued (problems with a stored verdict are not redone; harness errors are tried again).

    mode: 'evolve' (a run per problem: `mutator`, `models`, per-problem `budgets` with evolve's names, `seeds`
    folder or seeds beside the tasks), 'candidates' (the files in `candidates` matched by name), 'self_check' (the
    reference as its own candidate). `evaluators` (yours to close) or else `backend` with `evaluator_urls`, `ray`,
    `devices`, `workers` (see make_lanes) say where candidates run."""
    if mode not in ("evolve", "candidates", "self_check"):
        raise KsdkError(f"unknown bench mode {mode!r}: use evolve, candidates or self_check")
    if mode == "candidates" and not (candidates and Path(candidates).is_dir()):
        raise KsdkError(f"--candidates needs a folder of candidate files, got {candidates}")
    if seeds is not None and not Path(seeds).is_dir():
        raise KsdkError(f"--seeds {seeds} is not a folder")
    budgets = {k: float(v) for k, v in (budgets or {}).items() if v is not None}
    unknown = sorted(set(budgets) - set(BUDGET_NAMES))
    if unknown:
        raise KsdkError(f"unknown budget {', '.join(unknown)} (known: {', '.join(BUDGET_NAMES)})")
    if mode != "evolve" and (budgets or seeds is not None):
        raise KsdkError("budgets (--max-*) and --seeds belong to --evolve")
    from ksdk.evolution.budgets import make_budgets

    make_budgets(**{"max_cost_usd" if k == "max_cost" else k: v for k, v in budgets.items()})  # BudgetError now
    found = discover(suite, levels, problems)  # bad suites and filters fail before anything is started
    where = {"evaluator_urls": evaluator_urls, "ray": ray, "ray_address": ray_address,
             "ray_resources": ray_resources, "devices": devices, "workers": workers}
    async with _lanes(evaluators, backend, where) as lanes:
        config = BenchConfig(
            suite=str(Path(suite).resolve()), mode=mode, levels=sorted(levels), problems=list(problems),
            backend=lanes[0].evaluator.info().backend,
            candidates_dir=str(Path(candidates).resolve()) if candidates else None,
            seeds_dir=str(Path(seeds).resolve()) if seeds else None,
            mutator=mutator if mode == "evolve" else None, models=list(models) if mode == "evolve" else [],
            api_base=api_base if mode == "evolve" else None,
            mutator_options=dict(mutator_options or {}) if mode == "evolve" else {},
            budgets=budgets, random_seed=random_seed, label=label, retime_top=retime_top,
            retime_rounds=retime_rounds)
        return await run_config(config, out, lanes, found, progress=progress, handle_signals=handle_signals)


@contextlib.asynccontextmanager
async def _lanes(evaluators: list[Evaluator] | None, backend: str | None, where: dict[str, Any]):
    """Lanes over the evaluators given (the caller's to close), or over ones made here and closed on the way out."""
    if evaluators is not None:
        yield [Lane(e, label_of(e, i)) for i, e in enumerate(evaluators)]
        return
    lanes = await make_lanes(backend, **where)
    try:
        yield lanes
    finally:
        for lane in lanes:
            await lane.evaluator.close()


def resume_bench(out: str | Path, **options: Any) -> BenchSummary:
    """Continue the bench stored in `out` with its own settings (evaluators as in `bench_async`)."""
    return asyncio.run(resume_bench_async(out, **options))


async def resume_bench_async(out: str | Path, *, evaluators: list[Evaluator] | None = None,
                             evaluator_urls: Sequence[str] = (), ray: bool = False,
                             ray_address: str | None = None, ray_resources: dict[str, float] | None = None,
                             devices: Sequence[int] | None = None, workers: int | None = None, progress: bool = True,
                             handle_signals: bool = True) -> BenchSummary:
    """`resume_bench` inside an event loop."""
    config = BenchStore(out).load_config()
    found = discover(config.suite, config.levels, config.problems)
    where = {"evaluator_urls": evaluator_urls, "ray": ray, "ray_address": ray_address,
             "ray_resources": ray_resources, "devices": devices, "workers": workers}
    async with _lanes(evaluators, config.backend, where) as lanes:
        return await run_config(config, out, lanes, found, progress=progress, handle_signals=handle_signals)


async def run_config(config: BenchConfig, out: str | Path, lanes: list[Lane], found: list[Problem],
                     progress: bool = True, handle_signals: bool = True) -> BenchSummary:
    """Run `found` under `config` into `out` on `lanes` (their evaluators are the caller's to close)."""
    store = BenchStore(out)
    store.check_new()
    if store.exists:
        old = store.load_config()
        if old.identity() != config.identity():
            diff = sorted(k for k, v in config.identity().items() if old.identity().get(k) != v)
            raise KsdkError(f"{store.out} holds a bench with other settings ({', '.join(diff)} differ); continue it "
                            f"with `ksdk bench --resume {store.out}`, or choose a new --out")
        config = old
    names = sorted({lane.evaluator.info().backend for lane in lanes})
    if names != [config.backend]:
        raise KsdkError(f"the bench runs backend {config.backend}; the evaluators given run {', '.join(names)}")
    language = language_of(lanes[0].evaluator)
    if config.mode == "self_check" and not is_python(language):
        raise KsdkError(f"--self-check runs each problem's PyTorch reference as its own candidate, so it needs a "
                        f"backend whose candidates are Python (triton_nvidia, which without a GPU runs in Triton's "
                        f"interpreter: correct, never timed); backend {config.backend} takes {language.name or '?'} "
                        "candidates")
    records = {p.id: store.record(p) for p in found}
    todo = [p for p in found if records[p.id] is None or records[p.id].verdict == INFRA]
    seed_files = _seed_files(config, todo, language) if config.mode == "evolve" else {}
    if config.mode == "evolve":
        from ksdk.evolution.api import make_mutator

        mut = make_mutator(config.mutator or "params", config.models, config.api_base, config.mutator_options,
                           config.random_seed, config.budgets.get("max_cost"))
        try:  # built and checked once up front: a bad setting or a dead endpoint fails here, not per problem
            await mut.check()
        finally:
            await mut.close()
    store.save_config(config)

    view = BenchProgress(len(found), [r for r in records.values() if r is not None and r.verdict != INFRA],
                         title=f"ksdk bench {Path(config.suite).name}: {config.describe()}", enabled=progress)
    queue: asyncio.Queue[Problem] = asyncio.Queue()
    for p in todo:
        queue.put_nowait(p)
    t0 = time.perf_counter()

    async def feed(lane: Lane) -> None:
        while not queue.empty():
            problem = queue.get_nowait()
            view.started(problem.id, lane.label)
            try:
                record = await _run_problem(config, store, problem, lane.evaluator, language,
                                            seed_files.get(problem.id))
            except KsdkError as e:  # the harness or a service failed on this problem: retried on the next run
                record = _bare(problem, INFRA, message=str(e))
            record.where = lane.label
            store.save_record(record, problem)
            records[problem.id] = record
            store.save_summary(_summary(config, store, found, records, lanes, time.perf_counter() - t0))
            view.finished(record)  # after it is stored: a bench killed after this line keeps the problem

    feeders = [asyncio.ensure_future(feed(lane)) for lane in lanes for _ in range(lane.slots(config.mode))]
    main = asyncio.gather(*feeders)
    stopped: list[int] = []
    removers = _install_signals(main, stopped) if handle_signals else []
    view.start()
    try:
        await main
    except asyncio.CancelledError:
        if not stopped:  # cancelled by our caller, not by a signal: theirs to handle
            raise
    except BaseException:
        main.cancel()  # a harness bug in one problem: stop the others before the evaluators are closed
        await asyncio.gather(*feeders, return_exceptions=True)
        raise
    finally:
        for remove in removers:
            remove()
        view.stop()
    interrupted = bool(stopped)
    summary = _summary(config, store, found, records, lanes, time.perf_counter() - t0, interrupted=interrupted)
    from ksdk.bench.report import write_outputs

    summary.files = write_outputs(summary, store.out)
    store.save_summary(summary)
    return summary


def _install_signals(main: asyncio.Future, stopped: list[int]) -> list:
    """Ctrl-C / SIGTERM cancel the problems in flight (each evolve run saves its state); the finished ones are
    stored already. After the first signal the default handlers return, so a second Ctrl-C aborts at once."""
    from ksdk.evolution.api import on_stop_signals

    removers: list = []

    def on_signal(sig: int):
        for remove in removers:
            remove()
        stopped.append(sig)
        main.cancel()

    removers += on_stop_signals(on_signal)
    return removers


def _seed_files(config: BenchConfig, problems: list[Problem], language: Language) -> dict[str, Path]:
    """Each problem's seed: from the seeds folder by name, else beside the task (the seed finder's rule). Every
    problem must have one before anything runs."""
    from ksdk.evolution.api import find_seed

    out, missing = {}, []
    for p in problems:
        if config.seeds_dir:
            f, why = match_file(config.seeds_dir, p, extensions_of(language))
        else:
            try:
                f, why = find_seed(p.path, language), ""
            except KsdkError as e:
                f, why = None, str(e)
        if f is None:
            missing.append((p.id, why))
        else:
            out[p.id] = f
    if missing:
        shown = "; ".join(f"{pid}: {why}" for pid, why in missing[:3])
        raise KsdkError(f"{len(missing)} problem(s) have no seed ({shown}{'; ...' if len(missing) > 3 else ''}); "
                        "give --seeds DIR holding PROBLEM" + extensions_of(language)[0]
                        + " files, or leave those problems out with --problem/--level")
    return out


async def _run_problem(config: BenchConfig, store: BenchStore, problem: Problem, evaluator: Evaluator,
                       language: Language, seed: Path | None) -> ProblemRecord:
    if config.mode == "evolve":
        return await _evolve_problem(config, store, problem, evaluator, seed)
    from ksdk.tasks import load_task

    t0 = time.perf_counter()
    if config.mode == "self_check":
        task = load_task(problem.path, allow_torch_ops=["*"])
        # the candidate's process also times one batch by its own device events: a record beside the judge's clock
        # that tells the device's time from the hand-over's where a self-check is off 1.00x
        task = task.model_copy(update={"timing": task.timing.model_copy(update={"cross_check_reported": True})})
        source, path = task.source + SELF_CHECK_SUFFIX, None
    else:
        task = load_task(problem.path)
        f, why = match_file(config.candidates_dir, problem, extensions_of(language))
        if f is None:
            return _bare(problem, NO_CANDIDATE, message=why)
        source, path = f.read_text(encoding="utf-8", errors="replace"), str(f)
    result = await evaluator.evaluate(task, Candidate(source=source, language=language,
                                                      mutation=Mutation(mutator="bench")))
    record = from_result(problem, result, wall_s=time.perf_counter() - t0, candidate=path)
    if config.mode == "self_check":
        record.flag = self_check_flag(record)
    return record


def self_check_flag(r: ProblemRecord) -> str | None:
    """Why a self-check record is suspicious, or None: the reference must be correct at about 1.00x."""
    lo, hi = SELF_CHECK_BAND
    if r.verdict == INTERPRETED:  # the reference passed itself, in the interpreter: nothing to flag
        return None
    if not r.correct:
        return f"the reference failed its own check: {r.verdict}" + (f" ({r.error_kind})" if r.error_kind else "")
    if r.speedup is not None and not lo <= r.speedup <= hi:
        return f"self-check speedup {r.speedup:.3f}x is outside [{lo}, {hi}]" + _where(r)
    return None


def _where(r: ProblemRecord) -> str:
    """Where a self-check's time went: the one-pass bound where it set the candidate's time (passes were timed and
    their figure was below it), else the clock's record of one batch the candidate's process also timed by its own
    device events: its device work against the judge's clock over the same batch."""
    clock = r.clock or {}
    per, bound, base = (clock.get(k) for k in ("repeat_ms_per_call", "first_pass_bound_ms",
                                                 "baseline_repeat_ms_per_call"))
    if all(isinstance(v, (int, float)) for v in (per, bound)) and bound > per:
        return (f" (the one-pass bound set its time: {bound:.3f} ms a call, where its passes gave {per:.3f}"
                + (f" and the baseline's {base:.3f}" if isinstance(base, (int, float)) else "") + ")")
    batch = clock.get("events_batch") or {}
    own, judged = batch.get("candidate_events_ms"), batch.get("judge_clock_ms")
    if not isinstance(own, (int, float)) or not isinstance(judged, (int, float)) or judged <= 0:
        return ""
    return (f" (one batch: {own:.3f} ms of device work by the candidate process's own events, {judged:.3f} ms by the "
            "judge's clock)")


def _bare(problem: Problem, verdict: str, **fields: Any) -> ProblemRecord:
    return ProblemRecord(id=problem.id, name=problem.name, level=problem.level, path=problem.path, verdict=verdict,
                         **fields)


def from_result(problem: Problem, r: EvalResult, **fields: Any) -> ProblemRecord:
    """A problem's record from the verdict of its (best) candidate."""
    verdict = (INTERPRETED if r.interpreted else CORRECT if r.correct
               else DOES_NOT_FIT if r.message.startswith(verdicts.DOES_NOT_FIT)
               else INFRA if r.status == Status.INFRA_ERROR else INCORRECT)
    peak, io = r.device.extra.get("device_peak_memory_bytes"), r.device.extra.get("inputs_outputs_bytes")
    msg = r.message.strip().splitlines()
    return _bare(problem, verdict, correct=r.correct and not r.interpreted, speedup=r.speedup if r.correct else None,
                 baseline=r.baseline, stage=r.stage.value, error_kind=r.error_kind.value if r.error_kind else None,
                 message=(msg[-1] if msg else "")[:300], performance_skipped=r.performance_skipped,
                 candidate_ms=r.candidate_timing.median_ms if r.candidate_timing else None,
                 baseline_ms=r.baseline_timing.median_ms if r.baseline_timing else None,
                 peak_memory_bytes=int(peak) if isinstance(peak, (int, float)) else None,
                 io_bytes=int(io) if isinstance(io, (int, float)) else None,
                 peak_by_role=r.device.extra.get("device_peak_by_role"),
                 peak_during=r.device.extra.get("device_peak_during"), clock=r.device.extra.get("clock"),
                 device=f"{r.device.name} ({r.device.kind})", stages=dict(r.stages),
                 speedup_ci=r.speedup_ci if r.correct else None, **fields)


async def _evolve_problem(config: BenchConfig, store: BenchStore, problem: Problem, evaluator: Evaluator,
                          seed: Path | None) -> ProblemRecord:
    """Evolve one problem in its run directory: a new run, or the continuation of one a killed bench left."""
    from ksdk.evolution.api import evolve_async, resume_async
    from ksdk.evolution.config import RUN_FILE, RunConfig

    run_dir = store.run_dir(problem)
    if run_dir.is_dir() and not (run_dir / RUN_FILE).is_file():
        shutil.rmtree(run_dir)  # killed while the run was being created: nothing was evaluated, start it again
    if not run_dir.is_dir():
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        await evolve_async(problem.path, backend=evaluator, mutator=config.mutator or "params", seed=seed,
                           out=run_dir, models=config.models, api_base=config.api_base,
                           mutator_options=config.mutator_options, random_seed=config.random_seed,
                           progress=False, handle_signals=False, retime_top=config.retime_top,
                           retime_rounds=config.retime_rounds, **config.budgets)
    elif not RunConfig.load(run_dir).finished:
        await resume_async(run_dir, progress=False, handle_signals=False, evaluator=evaluator)
    return record_from_run(problem, run_dir)


def record_from_run(problem: Problem, run_dir: Path) -> ProblemRecord:
    """A problem's record from its evolution run: the best correct candidate, else the one that got furthest."""
    from ksdk.archives.sqlite import SqliteArchive
    from ksdk.evolution.config import ARCHIVE_FILE, RunConfig

    from ksdk.evolution.best import best_of, warnings_of

    cfg = RunConfig.load(run_dir)
    archive = SqliteArchive(run_dir / ARCHIVE_FILE, must_exist=True, language=cfg.language)
    try:
        entries = archive.evaluated()
        best = archive.leaders(1)
        facts = {"run_dir": str(run_dir), "evaluated": len(entries),
                 "valid": sum(1 for e in entries if e.result.correct), "cost_usd": archive.cost_usd,
                 "device_s": archive.device_s, "stop_reason": cfg.stop_reason,
                 "wall_s": float(archive.get_meta("elapsed_s", 0.0) or 0.0)}
        if best:
            named = run_dir / f"best{archive.language.extension}"
            best_file = named if named.is_file() else next(iter(sorted(run_dir.glob("best.*"))), named)
            record = from_result(problem, best[0].result, candidate=str(best_file) if best_file.is_file() else None,
                                 warnings=warnings_of(archive), **facts)
            reported = best_of(archive)
            if reported is not None and reported.retimed:  # the winner's re-timed median, not one evaluation
                record.speedup, record.speedup_interval = reported.speedup, reported.interval
                record.search_speedup, record.baseline = reported.search_speedup, reported.baseline
            return record
        if not entries:
            return _bare(problem, INFRA, message=f"no candidate was evaluated ({cfg.stop_reason})", **facts)
        furthest = max(entries, key=lambda e: e.result.stage.order)
        return from_result(problem, furthest.result, **facts)
    finally:
        archive.close()


def _summary(config: BenchConfig, store: BenchStore, found: list[Problem], records: dict, lanes: list[Lane],
             session_s: float, interrupted: bool = False) -> BenchSummary:
    done = [records[p.id] for p in found if records.get(p.id) is not None]
    pending = [p.id for p in found if records.get(p.id) is None or records[p.id].verdict == INFRA]
    notes = [AMSR_NOTE]
    untimed = [r for r in done if r.correct and r.speedup is None]
    if untimed:
        why = untimed[0].performance_skipped or "no timing"
        notes.append(f"{len(untimed)} correct problem(s) untimed ({why}): they count as correct but never as fast, "
                     "and AMSR is not defined")
    interpreted = [r for r in done if r.verdict == INTERPRETED]
    if interpreted:
        why = interpreted[0].performance_skipped or "no device here"
        notes.append(f"{len(interpreted)} problem(s) correct in an interpreter only ({why}): not run on a device, "
                     "so left out of every figure (never a verified result)")
    from ksdk.bench.report import baseline_notes

    notes += baseline_notes(done)
    flags = [f"{r.id}: {r.flag}" for r in done if r.flag]
    return BenchSummary(config=config, out=str(store.out), device=", ".join(sorted({r.device for r in done
                                                                                     if r.device})),
                        evaluators=[lane.label for lane in lanes], problems_total=len(found),
                        finished=not pending, interrupted=interrupted, pending=pending,
                        metrics=metrics_by_level(done), records=done, flags=flags, notes=notes, session_s=session_s)

