"""`ksdk` entry point: subcommands are registered here; every user error is one line and a non-zero exit."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from ksdk._version import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="ksdk: evolve faster GPU kernels, verified and timed on real hardware.")


def _version(value: bool):
    if value:
        print(f"ksdk {__version__}")
        raise typer.Exit()


RUNS_CANDIDATES = {"evolve", "eval", "serve", "bench"}
UNSANDBOXED = ("ksdk: candidates run WITHOUT the OS sandbox (--no-sandbox or KSDK_NO_SANDBOX=1): they can read your "
               "files and secrets and reach the network")


@app.callback()
def _root(ctx: typer.Context,
          version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                  help="Print the version and exit."),
          no_sandbox: bool = typer.Option(False, "--no-sandbox", help="Run candidates WITHOUT the OS sandbox (they "
                                          "can then read your files and secrets and reach the network): only on "
                                          "purpose, where bubblewrap cannot run. Same as KSDK_NO_SANDBOX=1.")):
    """ksdk: evolve faster GPU kernels, verified and timed on real hardware."""
    if no_sandbox:
        os.environ["KSDK_NO_SANDBOX"] = "1"
    if ctx.invoked_subcommand in RUNS_CANDIDATES:
        from ksdk.evaluation.sandbox import opted_out

        if opted_out():
            print(UNSANDBOXED, file=sys.stderr)


def _register() -> None:
    from ksdk.cli import backends_cmd, eval_cmd  # noqa: F401  (each module adds its commands to `app`)

    for optional in ("ksdk.cli.evolve_cmd", "ksdk.cli.export_cmd", "ksdk.cli.serve_cmd", "ksdk.cli.bench_cmd"):
        try:
            __import__(optional)
        except ModuleNotFoundError as e:
            if e.name != optional:
                raise


def main(argv: Optional[list[str]] = None) -> int:
    """Run the CLI; KsdkError and other failures become one clear line on stderr and exit code 2 or 1."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from ksdk.errors import KsdkError

    _register()
    try:
        code = app(args=argv, standalone_mode=False)
        # without standalone mode click returns a command's typer.Exit code instead of raising it
        return code if isinstance(code, int) else 0
    except typer.Exit as e:
        return e.exit_code
    except KsdkError as e:
        print(f"ksdk: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ksdk: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as e:  # an optional extra not installed: the install line, never "internal error"
        from ksdk.extras import missing_line

        if os.environ.get("KSDK_DEBUG"):
            raise
        line = missing_line(e.name) or f"{e} (a package ksdk or one of its plugins needs is not installed; " \
            "KSDK_DEBUG=1 shows where)"
        print(f"ksdk: error: {line}", file=sys.stderr)
        return 2
    except Exception as e:  # click usage errors and anything unexpected: one line, never a bare traceback
        # typer vendors its own click, so match click's exceptions by shape rather than by class
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            print(f"ksdk: error: {e.format_message()}", file=sys.stderr)
            return int(e.exit_code or 2)
        if type(e).__name__ == "Abort":
            print("ksdk: aborted", file=sys.stderr)
            return 1
        if os.environ.get("KSDK_DEBUG"):
            raise
        print(f"ksdk: internal error: {type(e).__name__}: {e} (set KSDK_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # run through ksdk.cli.main so subcommands register on the same app
    from ksdk.cli.main import main as _main

    sys.exit(_main())
