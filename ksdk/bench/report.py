"""A bench's report: the Markdown table, the plot (speedup per problem, sorted; the fast_p curve), and several
benches side by side (`ksdk bench --compare`)."""

from __future__ import annotations

import statistics

from collections.abc import Sequence
from pathlib import Path

from ksdk.archives.retimings import short
from ksdk.bench.metrics import FAST_PS, Metrics, fast_p, p_key
from ksdk.bench.progress import speedup_text, verdict_text
from ksdk.bench.store import BenchSummary, ProblemRecord

MARKDOWN_FILE = "summary.md"
PLOT_FILE = "bench.png"
METRIC_COLUMNS = (["problems", "correct"] + [f"fast_{p_key(p)}" for p in FAST_PS]
                  + ["mean", "geomean", "AMSR (fail=0)", "AMSR (fail=1x)"])


def _x(v: float | None) -> str:
    return f"{v:.3f}x" if v is not None else "-"


def metric_cells(m: Metrics) -> list[str]:
    """One row of the metrics table, in METRIC_COLUMNS order."""
    return ([str(m.problems), f"{m.correct} ({m.correctness_rate:.0%})"]
            + [f"{m.fast_p[p_key(p)]:.0%}" for p in FAST_PS]
            + [_x(m.mean_speedup), _x(m.geomean_speedup), _x(m.amsr_failed_as_0), _x(m.amsr_failed_as_1)])


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def esc(c: str) -> str:
        return str(c).replace("|", "\\|").replace("\n", " ")

    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows])


def _memory(n: int | None, io: int | None = None) -> str:
    """'1234.5 MiB', with its multiple of one trial's inputs plus outputs when both are known."""
    if n is None:
        return "-"
    return f"{n / 2**20:.1f} MiB" + (f" ({n / io:.1f}x I/O)" if io else "")


def markdown(s: BenchSummary) -> str:
    """The bench as Markdown: settings, the metrics per level and overall, flags, notes, one row per problem."""
    c = s.config
    state = "finished" if s.finished else f"not finished ({len(s.pending)} problems pending)"
    lines = [f"# ksdk bench: {Path(c.suite).name}" + (f" ({c.label})" if c.label else ""), "",
             f"{c.describe()}; device {s.device or '-'}; {state}.", "", "## Metrics", ""]
    lines += _table(["level"] + list(METRIC_COLUMNS), [[k] + metric_cells(m) for k, m in s.metrics.items()])
    lines += ["", ("fast_p: share of all problems that are correct and at least p times faster. Mean and geomean: "
                   "over the correct, timed problems.")]
    m = s.metrics.get("all")
    if m is not None and (m.does_not_fit or m.infra_errors or m.interpreted):
        lines += [f"Does not fit this device: {m.does_not_fit} problem(s); correct in an interpreter only (not run "
                  f"on a device): {m.interpreted}; both left out of every figure above. Harness errors (infra): "
                  f"{m.infra_errors}, counted as not correct (a resumed bench retries them)."]
    lines += [f"- {n}" for n in s.notes]
    if s.flags:
        lines += ["", "## Flags", ""] + [f"- {f}" for f in s.flags]
    lines += ["", "## Problems", ""]
    rows = [[r.id, verdict_text(r), speedup_text(r), short(r.baseline) if r.baseline else "-",
             f"{r.candidate_ms:.4f}" if r.candidate_ms is not None else "-",
             f"{r.baseline_ms:.4f}" if r.baseline_ms is not None else "-", _memory(r.peak_memory_bytes, r.io_bytes),
             str(r.evaluated) if r.evaluated is not None else "-", f"{r.wall_s:.1f}", r.flag or r.message]
            for r in s.records]
    lines += _table(["problem", "verdict", "speedup", "over", "candidate ms", "baseline ms", "peak memory",
                     "candidates", "wall s", "note"], rows)
    if s.pending:
        lines += ["", "Pending: " + ", ".join(s.pending)]
    lines += breakdown(s)
    return "\n".join(lines) + "\n"


def breakdown(s: BenchSummary) -> list[str]:
    """Where an evaluation's time went: the median seconds per stage (and part within them) over the problems."""
    rows = [r.stages for r in s.records if r.stages]
    if not rows:
        return []
    keys = sorted({k for st in rows for k in st}, key=lambda k: -statistics.median([st.get(k, 0.0) for st in rows]))
    cells = [[k, f"{statistics.median([st.get(k, 0.0) for st in rows]):.3f}",
              f"{max(st.get(k, 0.0) for st in rows):.3f}"] for k in keys]
    return ["", "## Where the time went", "", f"Median and largest seconds over {len(rows)} evaluations (stages, and "
            "parts within them):", ""] + _table(["stage or part", "median s", "max s"], cells)


def write_plot(s: BenchSummary, path: Path) -> Path:
    """PNG: each problem's speedup, sorted (incorrect ones at 0), and the fast_p curve over p."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outcomes = [r.outcome for r in s.records]
    timed = sorted((r.speedup if r.correct and r.speedup is not None else 0.0, r.correct, r.id) for r in s.records)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=100)
    if any(sp for sp, _, _ in timed):
        xs = list(range(1, len(timed) + 1))
        left.bar(xs, [sp for sp, _, _ in timed], color="#1f6feb")
        failed = [x for x, (_, ok, _) in zip(xs, timed) if not ok]
        left.scatter(failed, [0.0] * len(failed), marker="x", color="#d1242f", zorder=3)
        if len(xs) <= 40:
            left.set_xticks(xs, [pid for _, _, pid in timed], rotation=60, ha="right", fontsize=7)
        left.axhline(1.0, color="#888", linestyle="--", linewidth=1)
        top = max(max(sp for sp, _, _ in timed), 2.0) * 1.05
        ps = [top * i / 200 for i in range(201)]
        right.step(ps, [fast_p(outcomes, p) for p in ps], where="post", color="#1f6feb", linewidth=2)
        for p in FAST_PS:
            right.axvline(p, color="#bbb", linestyle=":", linewidth=1)
    else:
        for ax in (left, right):
            ax.text(0.5, 0.5, "no timed speedup\n(nothing correct, or correct but untimed)", ha="center",
                    va="center", transform=ax.transAxes, fontsize=9)
    left.set_xlabel("problem, sorted by speedup (red x: no correct kernel)")
    left.set_ylabel("best verified speedup (x)")
    left.set_title(f"{Path(s.config.suite).name}: speedup per problem")
    right.set_xlabel("p (speedup threshold)")
    right.set_ylabel("fast_p (share of all problems)")
    right.set_ylim(0, 1.02)
    right.set_title("fast_p")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def write_outputs(s: BenchSummary, out: Path) -> dict[str, str]:
    """summary.md and bench.png in `out` (summary.json is the store's); returns their paths."""
    md = out / MARKDOWN_FILE
    md.write_text(markdown(s))
    return {"summary": str(out / "summary.json"), "markdown": str(md), "plot": str(write_plot(s, out / PLOT_FILE))}


def label(s: BenchSummary) -> str:
    """A bench's column name in a comparison: its --label, else its folder's name."""
    return s.config.label or Path(s.out).name


def compare_rows(summaries: Sequence[BenchSummary]) -> tuple[list[str], list[list[str]]]:
    """Benches side by side: a row per setting and metric (per level and overall), a column per bench."""
    header = ["", *[label(s) for s in summaries]]
    rows = [["settings", *[s.config.describe() for s in summaries]],
            ["device", *[s.device or "-" for s in summaries]],
            ["finished", *["yes" if s.finished else f"no ({len(s.pending)} pending)" for s in summaries]]]
    levels = list(dict.fromkeys(k for s in summaries for k in s.metrics))
    for lv in levels:
        for i, col in enumerate(METRIC_COLUMNS):
            rows.append([f"{lv} {col}", *[metric_cells(s.metrics[lv])[i] if lv in s.metrics else "-"
                                          for s in summaries]])
    problems = list(dict.fromkeys(r.id for s in summaries for r in s.records))
    by = [{r.id: r for r in s.records} for s in summaries]
    for pid in problems:
        rows.append([pid, *[(speedup_text(b[pid]) if b[pid].correct else verdict_text(b[pid])) if pid in b else "-"
                            for b in by]])
    return header, rows


def compare_markdown(summaries: Sequence[BenchSummary]) -> str:
    header, rows = compare_rows(summaries)
    return "\n".join(_table(header, rows)) + "\n"


def baseline_notes(records: list[ProblemRecord]) -> list[str]:
    """What the speedups are over (each baseline and how many problems use it), whether the evolved ones were
    re-timed, and how many runs met a busy machine."""
    from collections import Counter

    timed = [r for r in records if r.correct and r.speedup is not None]
    over = Counter(short(r.baseline) for r in timed if r.baseline)
    notes = []
    if over:
        notes.append("speedups are over " + "; ".join(f"{name} ({n} problem{'s' * (n > 1)})"
                                                      for name, n in over.most_common()))
    retimed = [r for r in timed if r.speedup_interval is not None]
    if retimed:
        notes.append(f"{len(retimed)} evolved problem(s) report their winner's median over fresh re-timing rounds "
                     "(interval in brackets), not the search's single figure")
    busy = [r.id for r in records if any("busy" in w for w in r.warnings)]
    if busy:
        notes.append(f"the machine was busy during {len(busy)} run(s) ({', '.join(busy[:5])}"
                     f"{', ...' if len(busy) > 5 else ''}): their speedups vary with load; `ksdk show RUN_DIR` says "
                     "by how much")
    return notes
