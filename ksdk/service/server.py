"""The evaluation service: a FastAPI app in front of an Evaluator, and the uvicorn runner behind `ksdk serve`.

Routes: GET /health (no auth), GET /info, POST /evaluate (waits up to wait_s, then answers 202 with a job),
POST /jobs, GET /jobs/{id}?wait=S. Bearer-token auth unless disabled, a bounded queue (429 + Retry-After),
a request size limit (413), and verdicts stored by idempotency key so retries after a restart are answered.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures, whose types are local names.

import asyncio
import hmac
import ipaddress
import socket
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional

from ksdk._version import __version__
from ksdk.interfaces.evaluator import Evaluator
from ksdk.service.jobs import JobManager, KeyConflict, QueueFull
from ksdk.service.models import EvaluateRequest, JobState, JobStatus, ServiceInfo
from ksdk.service.store import VerdictStore

DEFAULT_QUEUE = 64
DEFAULT_MAX_REQUEST_BYTES = 4 << 20
DEFAULT_REQUEST_TIMEOUT_S = 300.0
TOKEN_HINT = ("send 'Authorization: Bearer <token>' "
              "(ServiceEvaluator reads KSDK_SERVICE_TOKEN or KSDK_SERVICE_TOKEN_FILE)")


class _BodyLimit:
    """ASGI middleware: a body over the limit is answered 413 before any of it reaches the app."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._too_large(send, int(declared))
        chunks, size = [], 0
        while True:  # bodies are small (a task and a program): buffer, counting, then replay to the app
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._too_large(send, size)
            if not msg.get("more_body"):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _too_large(self, send, size: int):
        import json

        detail = (f"request body of {size} bytes is over this service's limit of {self.limit} bytes; "
                  "start `ksdk serve` with a larger --max-request-bytes")
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app(evaluator: Evaluator, *, token: Optional[str], queue_size: int = DEFAULT_QUEUE,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
               request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S, state_dir: Optional[Path] = None,
               keep_s: float = 3600.0, max_stage_s: float = 600.0):
    """The FastAPI app serving `evaluator`; token=None disables auth (the caller decided so explicitly)."""
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse

    store = VerdictStore(Path(state_dir) / "verdicts.sqlite") if state_dir else None
    jobs = JobManager(evaluator, queue_size, store, keep_s=keep_s, max_stage_s=max_stage_s)
    started = time.time()

    @asynccontextmanager
    async def lifespan(_app):
        try:
            yield
        finally:
            await jobs.close()
            await evaluator.close()
            if store is not None:
                store.close()

    app = FastAPI(title="ksdk evaluation service", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.jobs = jobs

    def auth(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise HTTPException(401, f"this service needs a bearer token: {TOKEN_HINT}",
                                headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, f"wrong token: use the one in the service's --token-file; {TOKEN_HINT}",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def admit(req: EvaluateRequest):
        try:
            return jobs.submit(req)
        except QueueFull as e:
            raise HTTPException(429, f"{e}; retry after {e.retry_after} s",
                                headers={"Retry-After": str(e.retry_after)}) from None
        except KeyConflict as e:
            raise HTTPException(409, f"idempotency key {e} was already used for a different task or candidate; "
                                     "send a new key for a new request") from None

    async def wait_for(job, wait_s: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(job.done.wait()), timeout=max(0.0, wait_s))
        except asyncio.TimeoutError:
            pass

    def job_response(job, code_done: int = 200):
        st: JobStatus = job.status
        finished = st.state in (JobState.DONE, JobState.FAILED)
        code = code_done if finished else 202
        headers = {} if finished else {"Location": f"/jobs/{st.id}"}
        return JSONResponse(st.model_dump(mode="json"), status_code=code, headers=headers)

    @app.get("/health")
    async def health():
        return {"status": "ok", "backend": evaluator.info().backend, "pending": jobs.pending}

    @app.get("/info", dependencies=[Depends(auth)])
    async def info():
        base = evaluator.info()
        return ServiceInfo(
            **base.model_dump(),
            hints=evaluator.hints(), queue_size=queue_size, max_request_bytes=max_request_bytes,
            request_timeout_s=request_timeout_s, auth=token is not None, ksdk_version=__version__,
            started_at=started, queued=jobs.count(JobState.QUEUED), running=jobs.count(JobState.RUNNING),
            evaluated=jobs.evaluated, replayed=jobs.replayed,
        ).model_dump(mode="json")

    @app.post("/evaluate", dependencies=[Depends(auth)])
    async def evaluate(req: EvaluateRequest):
        job = admit(req)
        wait_s = request_timeout_s if req.wait_s is None else min(req.wait_s, request_timeout_s)
        await wait_for(job, wait_s)
        st = job.status
        if st.state == JobState.DONE:
            return JSONResponse(st.result.model_dump(mode="json"), headers={"X-Ksdk-Job": st.id})
        if st.state == JobState.FAILED:
            raise HTTPException(500, f"evaluation failed in the service: {st.error}")
        return job_response(job)  # still queued or running: 202, poll /jobs/{id}

    @app.post("/jobs", dependencies=[Depends(auth)])
    async def submit(req: EvaluateRequest):
        return job_response(admit(req))

    @app.get("/jobs/{job_id}", dependencies=[Depends(auth)])
    async def job_status(job_id: str, wait: float = 0.0):
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"unknown job {job_id} (finished too long ago, or the service restarted "
                                     "before it finished): submit it again with the same idempotency key")
        if wait > 0:
            await wait_for(job, min(wait, request_timeout_s))
        return job_response(job)

    return _BodyLimit(app, max_request_bytes) if max_request_bytes > 0 else app


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free one), bound before uvicorn starts so the port is known."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(evaluator: Evaluator, host: str, port: int, token: Optional[str], log=sys.stderr, **app_kwargs) -> None:
    """Serve until SIGINT/SIGTERM, then close the evaluator (its workers) cleanly."""
    import uvicorn

    sock = bind(host, port)
    real_port = sock.getsockname()[1]
    app = create_app(evaluator, token=token, **app_kwargs)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=30,
                            limit_concurrency=None, lifespan="on")
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    print(f"ksdk serve: {evaluator.info().backend} on http://{shown}:{real_port} "
          f"({evaluator.workers} workers, auth {'on' if token else 'OFF'})", file=log, flush=True)
    server.run(sockets=[sock])
