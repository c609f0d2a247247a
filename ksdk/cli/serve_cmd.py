"""`ksdk serve --backend NAME`: evaluate candidates for remote drivers over HTTP (see docs/service.md)."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Optional

import typer

from ksdk.cli.main import app
from ksdk.errors import KsdkError


def default_state_dir(backend: str) -> Path:
    """Where verdicts (and a generated token) live unless --state-dir says otherwise."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ksdk" / f"serve-{backend}"


def read_or_make_token(path: Path) -> str:
    """The token in `path`; a new random one (file mode 0600) when the file does not exist yet."""
    if path.exists():
        token = path.read_text().strip()
        if not token:
            raise KsdkError(f"token file {path} is empty: put a token in it, or delete it to have one generated")
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


@app.command("serve")
def serve(
    backend: str = typer.Option(..., "--backend", "-b", help="backend to evaluate with (see `ksdk backends`)"),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="address to bind; beyond loopback, serving without a token warns loudly"),
    port: int = typer.Option(8765, "--port", help="port to listen on (0 picks a free one)"),
    token_file: Optional[Path] = typer.Option(
        None, "--token-file", help="bearer token file; created with a random token if missing "
                                   "(default: STATE_DIR/token)"),
    no_auth: bool = typer.Option(False, "--no-auth", help="accept requests without a token (loopback use only)"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="worker processes (default: one per device)"),
    devices: Optional[str] = typer.Option(None, "--devices", help="comma-separated device indices, e.g. 0,1"),
    queue_size: int = typer.Option(64, "--queue-size", min=0, help="jobs that may wait beyond the busy workers"),
    max_request_bytes: int = typer.Option(4 << 20, "--max-request-bytes", min=1024, help="largest request body"),
    request_timeout: float = typer.Option(300.0, "--request-timeout", min=0.0,
                                          help="longest a request is held open before it answers with a job"),
    max_stage_timeout: float = typer.Option(600.0, "--max-stage-timeout", min=1.0,
                                            help="cap on any stage timeout a client's task asks for"),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help="where verdicts are kept across restarts"),
):
    """Serve evaluations over HTTP for remote `ksdk evolve --evaluator URL` drivers."""
    from ksdk.extras import require

    require("fastapi", "uvicorn", extra="service", what="ksdk serve")  # before a token file is written
    from ksdk.evaluation.local import LocalEvaluator
    from ksdk.service import server

    if no_auth and token_file is not None:
        raise KsdkError("--token-file and --no-auth contradict each other: pass one of them")
    state = state_dir or default_state_dir(backend)
    token = None if no_auth else read_or_make_token(token_file or state / "token")
    if not server.is_loopback(host) and token is None:
        print("\n" + "!" * 78 + f"\n!! WARNING: serving on {host} WITHOUT AUTHENTICATION. Anyone who can reach this"
              "\n!! port can run arbitrary code on this machine. Drop --no-auth (a token is then"
              "\n!! required) or bind 127.0.0.1.\n" + "!" * 78 + "\n", file=sys.stderr, flush=True)
    dev_list = None
    if devices:
        try:
            dev_list = [int(x) for x in devices.split(",") if x.strip()]
        except ValueError:
            raise KsdkError(f"--devices must be comma-separated integers such as 0,1, not {devices!r}") from None
    ev = LocalEvaluator(backend, devices=dev_list, workers=workers)
    if token is not None:
        where = token_file or state / "token"
        print(f"ksdk serve: token in {where}; clients: export KSDK_SERVICE_TOKEN_FILE={where}", file=sys.stderr)
    try:
        server.run(ev, host, port, token, queue_size=queue_size, max_request_bytes=max_request_bytes,
                   request_timeout_s=request_timeout, state_dir=state, max_stage_s=max_stage_timeout)
    except OSError as e:
        raise KsdkError(f"cannot listen on {host}:{port}: {e.strerror or e}; pick another --port") from None
