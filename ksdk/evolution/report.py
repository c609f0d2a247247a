"""End-of-run report: the best candidate as a file, a PNG of best speedup vs candidates, a self-contained HTML page."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Optional

from ksdk.archives.sqlite import SqliteArchive
from ksdk.evolution.best import RANKING, best_of, figure
from ksdk.interfaces.mutator import Scored

def verdict(entry: Scored) -> str:
    """One short word or phrase for a node: 'ok', 'pending', or the error kind and stage."""
    r = entry.result
    if r is None:
        return "pending"
    if r.correct:
        return "ok" if r.speedup is not None else "ok (untimed)"
    kind = r.error_kind.value if r.error_kind else r.status.value
    return f"{kind} at {r.stage.value}"


def progress_series(archive: SqliteArchive) -> list[tuple[int, Optional[float], Optional[float]]]:
    """(candidate number, its speedup or None, best speedup so far or None), in evaluation order."""
    out, best = [], None
    for i, entry in enumerate(archive.in_verdict_order(), 1):
        r = entry.result
        s = r.speedup if r.correct and r.speedup is not None else None
        if s is not None and (best is None or s > best):
            best = s
        out.append((i, s, best))
    return out


def write_plot(archive: SqliteArchive, path: Path) -> Path:
    """PNG of every correct candidate's speedup and the best so far, against candidates evaluated."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    series = progress_series(archive)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    xs = [i for i, s, _ in series if s is not None]
    ys = [s for _, s, _ in series if s is not None]
    bx = [i for i, _, b in series if b is not None]
    by = [b for _, _, b in series if b is not None]
    if xs:
        ax.scatter(xs, ys, s=12, color="#9aa7b8", label="correct candidate")
    if bx:
        ax.step(bx, by, where="post", color="#1f6feb", linewidth=2, label="best so far")
    best = best_of(archive)
    if best is not None and best.retimed and series:  # the reported figure: the winner's re-timed median
        lo, hi = best.interval or (best.speedup, best.speedup)
        ax.errorbar([series[-1][0]], [best.speedup], yerr=[[best.speedup - lo], [hi - best.speedup]], fmt="D",
                    color="#bf8700", capsize=4, label=f"best re-timed ({best.retiming.level})")
    ax.axhline(1.0, color="#888", linestyle="--", linewidth=1, label="baseline")
    ax.set_xlabel("candidates evaluated")
    ax.set_ylabel("speedup over baseline (x)")
    ax.set_title(f"{archive.get_meta('task_name', '') or 'run'}: best speedup vs candidates")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def write_best(archive: SqliteArchive, run_dir: Path) -> Optional[Path]:
    """RUN_DIR/best<ext> (the extension the archive's language declares) with the best correct candidate's source,
    or None when nothing is correct."""
    best = archive.leaders(1)
    if not best:
        return None
    path = run_dir / f"best{archive.language.extension}"
    path.write_text(best[0].candidate.source)
    return path


def _node_head(entry: Scored, on_best_path: bool) -> str:
    c, r = entry.candidate, entry.result
    speed = f"{r.speedup:.3f}x" if r is not None and r.speedup is not None else "-"
    v = verdict(entry)
    cls = "ok" if v.startswith("ok") else ("pending" if v == "pending" else "bad")
    how = c.mutation.mutator if c.mutation else "seed"
    if c.mutation and c.mutation.model:
        how += f" / {c.mutation.model}"
    star = " <b class='star'>&#9733; best path</b>" if on_best_path else ""
    return (f"<span class='id'>{html.escape(c.id)}</span> <span class='{cls}'>{html.escape(v)}</span> "
            f"<span class='sp'>{speed}</span> <span class='how'>gen {c.generation}, {html.escape(how)}</span>{star}")


def _tree_html(roots: list[Scored], kids: dict[str, list[Scored]], best_ids: set[str]) -> str:
    """Nested <details> for the lineage tree, built with an explicit stack (lineages can be thousands deep)."""
    out: list[str] = []
    stack: list[tuple[str, object]] = [("node", r) for r in reversed(roots)]
    while stack:
        op, item = stack.pop()
        if op == "close":
            out.append(item)  # type: ignore[arg-type]
            continue
        entry: Scored = item  # type: ignore[assignment]
        c, r = entry.candidate, entry.result
        opened = " open" if c.id in best_ids or not c.parent_ids else ""
        detail = html.escape(r.feedback()) if r is not None else "not evaluated yet"
        out.append(f"<details{opened}><summary>{_node_head(entry, c.id in best_ids)}</summary>"
                   f"<pre class='fb'>{detail}</pre>")
        children = kids.get(c.id, [])
        if children:
            out.append("<ul>")
            stack.append(("close", "</ul></details>"))
            for k in reversed(children):
                stack.append(("close", "</li>"))
                stack.append(("node", k))
                stack.append(("close", "<li>"))
        else:
            stack.append(("close", "</details>"))
    return "".join(out)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#1b1f24;max-width:1200px}
h1{font-size:1.4em} table{border-collapse:collapse;margin:1em 0} td,th{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;font-size:.9em} th{background:#f6f8fa} pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:.8em}
ul{list-style:none;padding-left:1.2em;border-left:1px dotted #bbb} summary{cursor:pointer;padding:2px 0}
.id{font-family:monospace} .ok{color:#1a7f37;font-weight:600} .bad{color:#cf222e} .pending{color:#9a6700}
.sp{font-weight:600} .how{color:#57606a;font-size:.85em} .star{color:#bf8700} .fb{margin:4px 0 4px 1em}
img{max-width:100%;border:1px solid #d0d7de}
"""


def write_html(archive: SqliteArchive, run_dir: Path, title: str, facts: dict[str, str],
               plot: Optional[Path]) -> Path:
    """RUN_DIR/report.html: summary, plot (embedded), top candidates, best source, the whole lineage tree."""
    entries = list(archive.all())
    kids: dict[str, list[Scored]] = {}
    roots = []
    ids = {e.candidate.id for e in entries}
    for e in entries:
        pid = e.candidate.parent_ids[0] if e.candidate.parent_ids else None
        if pid and pid in ids:
            kids.setdefault(pid, []).append(e)
        else:
            roots.append(e)
    best = archive.leaders(1)
    best_ids = {e.candidate.id for e in archive.lineage(best[0].candidate.id)} if best else set()
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append("<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                                     for k, v in facts.items()) + "</table>")
    if plot is not None and plot.is_file():
        data = base64.b64encode(plot.read_bytes()).decode()
        parts.append(f"<img alt='best speedup vs candidates' src='data:image/png;base64,{data}'>")
    top = archive.leaders(10)
    if top:
        parts.append(f"<h2>Top candidates</h2><p>{html.escape(RANKING)}.</p><table><tr><th>#</th><th>id</th>"
                     "<th>speedup</th><th>median ms</th><th>generation</th><th>mutation</th></tr>")
        for i, e in enumerate(top, 1):
            r, c = e.result, e.candidate
            ms = f"{r.candidate_timing.median_ms:.4f}" if r.candidate_timing else "-"
            sp = figure(archive, e)
            how = "seed"
            if c.mutation:
                how = c.mutation.mutator + (f" / {c.mutation.model}" if c.mutation.model else "")
            parts.append(f"<tr><td>{i}</td><td class='id'>{html.escape(c.id)}</td><td>{sp}</td><td>{ms}</td>"
                         f"<td>{c.generation}</td><td>{html.escape(how)}</td></tr>")
        parts.append("</table>")
        lineage = archive.lineage(top[0].candidate.id)
        parts.append("<h2>Lineage of the best</h2><ol>" + "".join(
            f"<li><span class='id'>{html.escape(e.candidate.id)}</span> {html.escape(verdict(e))} "
            f"{(f'{e.result.speedup:.3f}x' if e.result and e.result.speedup is not None else '')}</li>"
            for e in lineage) + "</ol>")
        parts.append(f"<h2>Best source</h2><pre>{html.escape(top[0].candidate.source)}</pre>")
    else:
        parts.append("<p><b>No correct candidate yet.</b></p>")
    parts.append("<h2>Lineage tree</h2><p>Every candidate under its parent; click a node for its verdict and "
                 "feedback.</p>")
    parts.append(_tree_html(roots, kids, best_ids))
    parts.append("</body></html>")
    path = run_dir / "report.html"
    path.write_text("".join(parts))
    return path


def write_report(archive: SqliteArchive, run_dir: Path, facts: dict[str, str], title: str = "") -> dict[str, str]:
    """Write best.<ext>, progress.png and report.html; returns their paths by name."""
    run_dir = Path(run_dir)
    out: dict[str, str] = {}
    best = write_best(archive, run_dir)
    if best is not None:
        out["best"] = str(best)
    try:
        plot: Optional[Path] = write_plot(archive, run_dir / "progress.png")
        out["plot"] = str(plot)
    except ImportError as e:  # a worker image without matplotlib still gets its report, minus the plot
        plot = None
        facts = {**facts, "plot": f"not drawn: {e} (pip install matplotlib)"}
    out["report"] = str(write_html(archive, run_dir, title or "ksdk run report", facts, plot))
    return out

