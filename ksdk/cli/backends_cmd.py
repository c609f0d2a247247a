"""`ksdk backends`: every registered backend, whether it can run here, and if not why and how to fix it."""

from __future__ import annotations

import json

import typer

from ksdk.cli.main import app


def backend_rows() -> list[dict]:
    """One row per entry point in `ksdk.backends`, broken plugins included."""
    from ksdk.registry import discover

    rows = []
    for e in discover("backends"):
        row = {"name": e.name, "distribution": e.distribution, "version": e.version, "target": e.target,
               "available": False, "usable": False, "devices": [], "reason": "", "fix": "", "fallback": None}
        if e.error:
            row["reason"] = f"plugin error: {e.error}"
        else:
            try:
                a = e.obj.probe()
                row.update(available=a.available, usable=a.usable, reason=a.reason, fix=a.fix, fallback=a.fallback,
                           devices=[d.name for d in a.devices])
            except Exception as exc:  # a probe must never take the listing down
                row["reason"] = f"probe raised {type(exc).__name__}: {exc}"
        rows.append(row)
    return rows


@app.command("backends")
def backends(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List backends: name, distribution, version, available, devices, and why not when unavailable; then the
    sandbox and the containment candidates get (which guarantee is weaker here, and how to get it)."""
    from ksdk.evaluation import containment, sandbox

    rows = backend_rows()
    status = sandbox.status()
    contained = containment.status()
    if as_json:  # every backend's candidates run in the same sandbox: each row says its state
        box = {**status.model_dump(), "opted_out": sandbox.opted_out(), "containment": contained.model_dump()}
        print(json.dumps([dict(r, sandbox=box) for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="ksdk backends")
    for col in ("name", "distribution", "version", "available", "devices", "reason / fix"):
        table.add_column(col, overflow="fold")
    for r in rows:
        avail = "[green]yes[/]" if r["available"] else ("[yellow]fallback[/]" if r["usable"] else "[red]no[/]")
        why = r["reason"]
        if r["fix"]:
            why += f"\nfix: {r['fix']}"
        if r["fallback"]:
            why += f"\nfallback: {r['fallback']}"
        table.add_row(escape(r["name"]), escape(r["distribution"]), escape(r["version"]), avail,
                      escape(", ".join(r["devices"]) or "-"), escape(why or "-"))
    console = Console(width=160)
    console.print(table)
    line = status.line()
    if sandbox.opted_out():
        line = "sandbox: OFF (--no-sandbox / KSDK_NO_SANDBOX=1): candidates run unsandboxed"
    console.print(escape(line), style="green" if status.available and not sandbox.opted_out() else "yellow")
    console.print(escape(contained.line()), style="yellow" if contained.weaker else "green")
    for weaker in contained.weaker:
        console.print(escape(f"  weaker: {weaker}"), style="yellow")
