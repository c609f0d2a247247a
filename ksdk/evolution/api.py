"""The Python API: `evolve(task, backend=..., mutator=...)` and `resume(run_dir)`, the same runs as the CLI."""

from __future__ import annotations

import asyncio
import glob
import inspect
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import ValidationError

from ksdk.archives.selection import SelectionConfig
from ksdk.errors import KsdkError, PluginError, RunDirError
from ksdk.evaluation import make_evaluator
from ksdk.evolution.budgets import Usage, make_budgets, reached
from ksdk.evolution.config import ARCHIVE_FILE, TASK_FILE, RunConfig
from ksdk.interfaces.evaluator import Evaluator
from ksdk.interfaces.mutator import Mutator
from ksdk.languages import Language
from ksdk.evolution.finish import RunSummary
from ksdk.models import Candidate, Mutation, Task

LOCK_FILE = ".lock"

SEED_PATTERNS = ("{stem}_seed.*", "{stem}.seed.*", "seed_{stem}.*", "seed.*")


def find_seed(task_path: Optional[str], language: Language, explicit: Optional[Union[str, Path]] = None) -> Path:
    """The seed candidate file: the one given, else one shipped beside the task (TASK_seed.<ext>, seed.<ext>),
    preferring the language's file extensions."""
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise KsdkError(f"seed file not found: {p}")
        return p
    if task_path:
        tp = Path(task_path)
        for pattern in SEED_PATTERNS:
            found = sorted(f for f in tp.parent.glob(pattern.format(stem=glob.escape(tp.stem)))
                           if f.is_file() and f != tp)
            preferred = [f for f in found if f.name.endswith(language.extensions)] or found
            if preferred:
                return preferred[0]
    where = Path(task_path).parent if task_path else Path(".")
    stem = Path(task_path).stem if task_path else "TASK"
    raise KsdkError(f"no seed candidate for task '{stem}': pass --seed FILE (a first working kernel), or put "
                    f"{stem}_seed{language.extension} beside the task in {where}")


def parse_models(specs: list[str]) -> tuple[list[str], Optional[list[float]]]:
    """'provider/name' or 'provider/name=WEIGHT' specs -> names and weights (None when none is given)."""
    names, weights = [], []
    for spec in specs:
        name, _, weight = spec.partition("=")
        if not name:
            raise KsdkError(f"bad --model '{spec}': use provider/name, or provider/name=WEIGHT for an ensemble")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise KsdkError(f"bad --model '{spec}': the weight after '=' must be a number") from None
        if w < 0:
            raise KsdkError(f"bad --model '{spec}': the weight must be >= 0")
        names.append(name)
        weights.append(w)
    return names, (weights if any("=" in s for s in specs) else None)


def make_mutator(name: str, models: list[str], api_base: Optional[str], options: dict[str, Any],
                 random_seed: int = 0, max_cost_usd: Optional[float] = None,
                 api_key: Optional[str] = None) -> Mutator:
    """A mutator from the `ksdk.mutators` registry, given only the settings its constructor declares."""
    from ksdk.registry import load

    cls = load("mutators", name)
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    names, weights = parse_models(models)
    offered: dict[str, Any] = {"api_base": api_base, "api_key": api_key, "seed": random_seed, "weights": weights,
                               "max_cost_usd": max_cost_usd}
    if names:
        if "models" in params:
            offered["models"] = names
        elif "model" in params:
            offered["model"] = names if len(names) > 1 else names[0]
        else:
            raise KsdkError(f"mutator '{name}' takes no model; drop --model or use --mutator llm")
    offered.update(options)
    kwargs = {k: v for k, v in offered.items() if v is not None and (k in params or k in options)}
    try:
        return cls(**kwargs)
    except KsdkError:
        raise
    except (TypeError, ValueError) as e:
        raise PluginError(f"mutator '{name}' could not start: {e}") from None


def _language(evaluator: Evaluator, seed: Any = None) -> Language:
    """The candidate language: the evaluator's, else (an evaluator that declares none) the seed candidate's name."""
    language = evaluator.info().language
    if not language.name and isinstance(seed, Candidate):
        return Language(name=seed.language)
    return language


RUN_OUTPUTS = ("run.json", ARCHIVE_FILE, ARCHIVE_FILE + "-wal", ARCHIVE_FILE + "-shm", TASK_FILE, LOCK_FILE,
               "summary.json", "report.html", "progress.png")


def _check_new_run_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} exists and is not a folder; choose another path")
    if out.is_dir() and any(out.iterdir()):
        if (out / "run.json").is_file():
            if _made_nothing(out):  # a run that stopped before its first child: the same command starts it again
                return _clear(out)
            raise RunDirError(f"{out} already holds a run: continue it with `ksdk evolve --resume {out}` "
                              "or choose a new --out")
        raise RunDirError(f"{out} exists and is not empty; choose a new --out folder")


def _made_nothing(out: Path) -> bool:
    """True when RUN_DIR holds only what a run writes and no candidate beyond its seed (it failed before making
    one: a dead LLM endpoint, a refused key, a seed that does not compile)."""
    import sqlite3
    from urllib.parse import quote

    names = {p.name for p in out.iterdir()}
    if not names <= set(RUN_OUTPUTS) | {f.name for f in out.glob("best.*")} or ARCHIVE_FILE not in names:
        return False
    try:  # read-only: a folder that holds a real run is left as it was, byte for byte
        db = sqlite3.connect(f"file:{quote(str((out / ARCHIVE_FILE).resolve()))}?mode=ro", uri=True)
        try:
            return db.execute("SELECT count(*) FROM candidates").fetchone()[0] <= 1
        finally:
            db.close()
    except sqlite3.Error:
        return False


def _clear(out: Path) -> None:
    with _lock(out):  # not while another session holds it
        for p in out.iterdir():
            if p.name != LOCK_FILE:
                p.unlink()


def evolve(task: Union[str, Path, Task], *, backend: Union[str, Evaluator], mutator: Union[str, Mutator] = "params",
           seed: Union[str, Path, Candidate, None] = None, out: Union[str, Path, None] = None,
           models: Optional[list[str]] = None, model: Optional[str] = None, api_base: Optional[str] = None,
           api_key: Optional[str] = None, max_candidates: Optional[int] = None, max_minutes: Optional[float] = None,
           max_cost: Optional[float] = None, max_gpu_seconds: Optional[float] = None,
           target_speedup: Optional[float] = None, workers: Optional[int] = None,
           mutation_concurrency: Optional[int] = None, selection: Optional[SelectionConfig] = None,
           mutator_options: Optional[dict[str, Any]] = None, evaluator_url: Optional[str] = None,
           random_seed: int = 0, progress: bool = True, handle_signals: bool = True,
           retime_top: Optional[int] = None, retime_rounds: Optional[int] = None, race: bool = True) -> RunSummary:
    """Run an evolution and return its summary. Budgets are totals; with none given, 100 candidates. Before it
    reports its best, the `retime_top` (3) leading candidates and the seed are evaluated `retime_rounds` (5) more
    times in turn, and the best is the one with the best median speedup over those rounds (unset, both shrink until
    that costs at most half the session's evaluations: ksdk.evolution.retime.plan). With `race`, a candidate is timed
    only until it is clearly slower than the best so far (ksdk.evaluation.race)."""
    return _run_sync(evolve_async(**{k: v for k, v in locals().items()}))


async def evolve_async(task: Union[str, Path, Task], *, backend: Union[str, Evaluator],
                       mutator: Union[str, Mutator] = "params", seed: Union[str, Path, Candidate, None] = None,
                       out: Union[str, Path, None] = None, models: Optional[list[str]] = None,
                       model: Optional[str] = None, api_base: Optional[str] = None, api_key: Optional[str] = None,
                       max_candidates: Optional[int] = None, max_minutes: Optional[float] = None,
                       max_cost: Optional[float] = None, max_gpu_seconds: Optional[float] = None,
                       target_speedup: Optional[float] = None, workers: Optional[int] = None,
                       mutation_concurrency: Optional[int] = None, selection: Optional[SelectionConfig] = None,
                       mutator_options: Optional[dict[str, Any]] = None, evaluator_url: Optional[str] = None,
                       random_seed: int = 0, progress: bool = True, handle_signals: bool = True,
                       retime_top: Optional[int] = None, retime_rounds: Optional[int] = None,
                       race: bool = True) -> RunSummary:
    """`evolve` for code already inside an event loop. `api_key` is used, never stored (run.json has no secret)."""
    from ksdk.tasks import load_task

    models = list(models or ([model] if model else []))
    t = task if isinstance(task, Task) else load_task(task)
    budgets = make_budgets(max_candidates=max_candidates, max_minutes=max_minutes, max_cost_usd=max_cost,
                           max_gpu_seconds=max_gpu_seconds, target_speedup=target_speedup)
    run_dir = Path(out) if out is not None else Path("runs") / f"{t.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    _check_new_run_dir(run_dir)
    # Build everything that can fail on bad input before the run folder is created.
    own_evaluator = isinstance(backend, str)
    evaluator = make_evaluator(backend, evaluator_url, workers) if isinstance(backend, str) else backend
    backend_name = backend if isinstance(backend, str) else evaluator.info().backend
    own_mutator, mut = isinstance(mutator, str), None
    try:
        language = _language(evaluator, seed)
        mut = make_mutator(mutator, models, api_base, mutator_options or {}, random_seed,
                           budgets.max_cost_usd, api_key) if isinstance(mutator, str) else mutator
        await mut.check()  # an LLM's key and endpoint, before the folder is made or the seed evaluated
        mutator_name = mutator if isinstance(mutator, str) else (getattr(mutator, "name", "") or type(mutator).__name__)
        if isinstance(seed, Candidate):
            seed_cand, seed_path = seed, None
        else:
            sp = find_seed(t.path, language, seed)
            seed_cand = Candidate(source=sp.read_text(), language=language, mutation=Mutation(mutator="seed"))
            seed_path = str(sp.resolve())
        try:
            config = RunConfig(
                task_name=t.name, task_path=t.path, backend=backend_name, evaluator_url=evaluator_url,
                workers=workers, device=_device(evaluator), mutator=mutator_name, models=models, api_base=api_base,
                mutator_options=mutator_options or {}, mutation_concurrency=mutation_concurrency, budgets=budgets,
                selection=selection or SelectionConfig(), seed_path=seed_path, seed_language=language.name,
                language=language, random_seed=random_seed, race=race,
                **{k: v for k, v in (("retime_top", retime_top), ("retime_rounds", retime_rounds)) if v is not None},
            )
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ()))
            raise KsdkError(f"bad run setting {where}={first.get('input')!r}: {first.get('msg', 'invalid')}") from None
    except BaseException:
        if own_mutator and mut is not None:
            await mut.close()
        if own_evaluator:
            await evaluator.close()
        raise
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = _lock(run_dir)
    except BaseException:
        if own_mutator:
            await mut.close()
        if own_evaluator:
            await evaluator.close()
        raise
    with lock:
        if t.path and Path(t.path).is_file():
            shutil.copyfile(t.path, run_dir / TASK_FILE)
        else:
            (run_dir / TASK_FILE).write_text(t.source)
        config.save(run_dir)
        return await _session(config, run_dir, t, evaluator, mut, seed_cand, progress, handle_signals,
                              own=(own_evaluator, own_mutator))


async def evolve_each_async(task: Union[str, Path, Task], *, evaluator_urls: list[str], out: Union[str, Path],
                            **options: Any) -> list[RunSummary]:
    """Evolve one task on several backends at once, one sub-run per evaluation service: OUT/<backend>.

    Each URL (or comma-separated pool of URLs) names a `ksdk serve` of one backend; the backend is read from the
    service. Each sub-run is a complete run directory (resume, show and export it on its own). `options` are
    those of `evolve_async` (budgets apply to each sub-run)."""
    from ksdk.registry import load

    out = Path(out)
    _check_new_run_dir(out)
    client_cls = load("evaluators", "service")
    names: list[str] = []
    for url in evaluator_urls:
        probe = client_cls(url.split(",")[0].strip())
        try:
            names.append(probe.info().backend)
        finally:
            await probe.close()
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise KsdkError(f"several --evaluator services run backend {', '.join(twice)}: give services of one backend "
                        "as one comma-separated pool (--evaluator URL1,URL2), one --evaluator per backend")
    options = {**options, "handle_signals": False}
    return list(await asyncio.gather(*(
        evolve_async(task, backend=name, evaluator_url=url, out=out / name, **options)
        for name, url in zip(names, evaluator_urls))))


def resume(run_dir: Union[str, Path], *, max_candidates: Optional[int] = None, max_minutes: Optional[float] = None,
           max_cost: Optional[float] = None, max_gpu_seconds: Optional[float] = None,
           target_speedup: Optional[float] = None, api_key: Optional[str] = None, progress: bool = True,
           handle_signals: bool = True, retime_top: Optional[int] = None,
           retime_rounds: Optional[int] = None) -> RunSummary:
    """Continue a run from its RUN_DIR: pending candidates are evaluated, budgets (optionally raised) apply. A run
    that stopped at a budget continues only when that budget is raised (RunDirError says which)."""
    return _run_sync(resume_async(**{k: v for k, v in locals().items()}))


async def resume_async(run_dir: Union[str, Path], *, max_candidates: Optional[int] = None,
                       max_minutes: Optional[float] = None, max_cost: Optional[float] = None,
                       max_gpu_seconds: Optional[float] = None, target_speedup: Optional[float] = None,
                       api_key: Optional[str] = None, progress: bool = True,
                       handle_signals: bool = True, evaluator: Optional[Evaluator] = None,
                       retime_top: Optional[int] = None, retime_rounds: Optional[int] = None) -> RunSummary:
    """`resume` for code already inside an event loop. `evaluator` (yours to close; of the run's backend) replaces
    the one run.json describes, e.g. to resume many runs on a shared pool (`ksdk bench`)."""
    run_dir = Path(run_dir)
    config = RunConfig.load(run_dir)
    for name, value in (("retime_top", retime_top), ("retime_rounds", retime_rounds)):
        if value is not None:
            if value < 0:
                raise KsdkError(f"{name} must be 0 or more, got {value}")
            setattr(config, name, int(value))
    with _lock(run_dir):
        return await _resume_locked(run_dir, config, max_candidates, max_minutes, max_cost, max_gpu_seconds,
                                    target_speedup, api_key, progress, handle_signals, evaluator)


async def _resume_locked(run_dir: Path, config: RunConfig, max_candidates, max_minutes, max_cost, max_gpu_seconds,
                         target_speedup, api_key, progress: bool, handle_signals: bool,
                         given: Optional[Evaluator] = None) -> RunSummary:
    from ksdk.tasks import load_task

    config.budgets = config.budgets.merged(max_candidates=max_candidates, max_minutes=max_minutes,
                                           max_cost_usd=max_cost, max_gpu_seconds=max_gpu_seconds,
                                           target_speedup=target_speedup)
    t = load_task(run_dir / TASK_FILE, name=config.task_name)
    t.path = config.task_path or t.path
    usage, attempts = _usage(run_dir)
    stop = reached(config.budgets, usage)
    if stop is not None:
        raise RunDirError(f"{run_dir} stopped at its budget: {stop[0]}; raise it to continue, e.g. `ksdk evolve "
                          f"--resume {run_dir} {stop[1]}`")
    if given is not None and given.info().backend != config.backend:
        raise KsdkError(f"{run_dir} runs on backend {config.backend}; the evaluator given runs "
                        f"{given.info().backend}: resume it on an evaluator of {config.backend}")
    evaluator = given or make_evaluator(config.backend, config.evaluator_url, config.workers)
    try:
        left = None if config.budgets.max_cost_usd is None else max(config.budgets.max_cost_usd - usage.cost_usd, 0.0)
        # a resumed session draws fresh random choices (and LLM seeds): repeating the first session's is no use
        mut = make_mutator(config.mutator, config.models, config.api_base, config.mutator_options,
                           config.random_seed * 1_000_003 + attempts, left, api_key)
        try:
            await mut.check()
        except BaseException:
            await mut.close()
            raise
        declared = evaluator.info().language
    except BaseException:
        if given is None:
            await evaluator.close()
        raise
    if declared.name == (config.seed_language or declared.name):  # the backend's declaration as installed now
        config.language = declared
    config.resumed_at.append(time.time())
    config.finished = False
    config.save(run_dir)
    return await _session(config, run_dir, t, evaluator, mut, None, progress, handle_signals,
                          own=(given is None, True))


def _lock(run_dir: Path):
    """An exclusive lock on RUN_DIR for one session (released when the returned file closes): two processes
    driving one run would evaluate its pending candidates twice and overshoot its budgets."""
    import fcntl

    fh = open(run_dir / LOCK_FILE, "a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if not isinstance(e, BlockingIOError):  # a file system without locks (some NFS): go on unguarded
            return fh
        fh.close()
        raise RunDirError(f"{run_dir} is in use by another ksdk session (a run or resume still going); "
                          "wait for it to end, or stop it first") from None
    return fh


def _usage(run_dir: Path) -> tuple[Usage, int]:
    """What the run in RUN_DIR has used so far, and how many mutation attempts it made."""
    from ksdk.archives.sqlite import SqliteArchive

    archive = SqliteArchive(run_dir / ARCHIVE_FILE, must_exist=True)
    try:
        elapsed = float(archive.get_meta("elapsed_s", 0.0) or 0.0)
        return Usage.of(archive, elapsed_s=elapsed, cost_usd=archive.cost_usd), archive.attempt_count
    finally:
        archive.close()


def _device(evaluator: Evaluator):
    try:
        info = evaluator.info()
    except Exception:
        return None
    devs = info.availability.devices
    if info.interpret or not devs:
        from ksdk.models import DeviceInfo

        return DeviceInfo(name=info.availability.fallback or "interpreter", kind="interpreter")
    return devs[0]


async def _session(config: RunConfig, run_dir: Path, task: Task, evaluator: Evaluator, mutator: Mutator,
                   seed: Optional[Candidate], progress: bool, handle_signals: bool,
                   own: tuple[bool, bool]) -> RunSummary:
    from ksdk.archives.sqlite import SqliteArchive
    from ksdk.evolution.loop import INTERRUPTED, Evolution
    from ksdk.evolution.progress import Progress
    from ksdk.evolution.finish import facts_of, retime_leaders, summarize_run
    from ksdk.evolution.report import write_report

    language = config.language or Language(name=config.seed_language or "")
    archive = SqliteArchive(run_dir / ARCHIVE_FILE, selection=config.selection, language=language)
    removers = []
    try:
        if seed is not None and len(archive) == 0:
            archive.set_meta("task_name", config.task_name)
            archive.add(seed, None)
        evo = Evolution(task, evaluator, mutator, archive, config.budgets, backend=config.backend,
                        language=language, mutator_name=config.mutator,
                        mutation_concurrency=config.mutation_concurrency, inspirations=config.inspirations,
                        random_seed=config.random_seed, progress=Progress(enabled=progress), race=config.race,
                        elapsed_before=float(archive.get_meta("elapsed_s", 0.0) or 0.0))
        if handle_signals:
            removers = _install_signals(evo)
        try:
            reason = await evo.run()
        except asyncio.CancelledError:  # cancelled from outside (e.g. Ctrl-C over several sub-runs): say so
            config.finished, config.stop_reason = False, INTERRUPTED
            config.save(run_dir)
            raise
        interrupted = reason == INTERRUPTED
        usage = evo.usage()
        error = evo.error
        if error is None and not interrupted and evo.session_attempts and not evo.session_children:
            error = f"no mutation succeeded in {evo.session_attempts} attempt(s) (last: {evo.last_error})"
        config.finished = not interrupted and not reason.startswith("internal error") and error is None
        config.stop_reason = reason
        config.save(run_dir)
        retime_s = 0.0
        if not interrupted and not reason.startswith("internal error"):  # a Ctrl-C now skips it, the run stands
            retime_s = await retime_leaders(config, archive, task, evaluator, evo.session_evaluated,
                                            lambda: evo.interrupted, evo.progress.message)
            if evo.interrupted:
                evo.progress.message("re-timing interrupted: the best is reported as the search measured it")
        for remove in removers:
            remove()
        removers = []
        facts = facts_of(config, archive, usage, reason)
        files = write_report(archive, run_dir, facts, title=f"ksdk run: {config.task_name} on {config.backend}")
        summary = summarize_run(config, run_dir, archive, evo, evaluator, usage, reason, error, files, retime_s)
        (run_dir / "summary.json").write_text(summary.model_dump_json(indent=2))
        for line in summary.lines():
            evo.progress.message(line)
        return summary
    finally:
        for remove in removers:
            remove()
        archive.close()
        if own[1]:
            await mutator.close()
        if own[0]:
            await evaluator.close()


def _run_sync(coro) -> RunSummary:
    try:
        return asyncio.run(coro)
    except asyncio.CancelledError:  # a second Ctrl-C cancels the session: it is an interrupt, not a crash
        raise KeyboardInterrupt from None


def on_stop_signals(handler) -> list:
    """Call handler(signum) on Ctrl-C / SIGTERM while the running asyncio loop lasts (main thread only; elsewhere
    nothing is installed); returns the functions that remove the handlers again."""
    if threading.current_thread() is not threading.main_thread():
        return []
    loop = asyncio.get_running_loop()
    removers = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler, sig)
            removers.append(lambda s=sig: loop.remove_signal_handler(s))
        except (NotImplementedError, RuntimeError):
            pass
    return removers


def _install_signals(evo) -> list:
    """Ctrl-C / SIGTERM stop the run cleanly (state saved, report written); a second Ctrl-C cancels at once."""
    main = asyncio.current_task()
    hits = {"n": 0}

    def on_signal(_sig: int):
        hits["n"] += 1
        if hits["n"] == 1:
            from ksdk.evolution.loop import INTERRUPTED

            evo.request_stop(INTERRUPTED, hard=True)
        elif main is not None:
            main.cancel()

    return on_stop_signals(on_signal)
