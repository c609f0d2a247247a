"""ServiceEvaluator: the Evaluator interface over HTTP, talking to a `ksdk serve` service.

Every candidate travels with an idempotency key, so retries (connection errors, 5xx, 429 with Retry-After, a
service restart) are answered with the one verdict the service computed, never a second evaluation.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Optional

from ksdk.errors import KsdkError
from ksdk.interfaces.evaluator import Evaluator
from ksdk.models import Candidate, ErrorKind, EvalResult, EvaluatorInfo, Status, Task
from ksdk.service.models import EvaluateRequest, JobState, JobStatus, ServiceInfo, idempotency_key

TOKEN_ENV, TOKEN_FILE_ENV = "KSDK_SERVICE_TOKEN", "KSDK_SERVICE_TOKEN_FILE"


class ServiceError(KsdkError):
    """The service could not be reached, refused us, or answered something we cannot use."""


def _token_from_env() -> Optional[str]:
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    path = os.environ.get(TOKEN_FILE_ENV)
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ServiceError(f"{TOKEN_FILE_ENV}={path} names no file: point it at the service's token file")
        return p.read_text().strip()
    return None


def _detail(response) -> str:
    try:
        d = response.json().get("detail")
        return d if isinstance(d, str) else str(d)
    except Exception:
        return response.text[:300]


class ServiceEvaluator(Evaluator):
    """Evaluates through a `ksdk serve` service at `url`; token defaults to $KSDK_SERVICE_TOKEN(_FILE).

    timeout: the longest one evaluation may take end to end, waits included; retries: consecutive
    connection errors or 5xx answers tolerated (with exponential backoff) before giving up; workers:
    evaluations to keep in flight (default: the service's worker count, from /info).
    """

    def __init__(self, url: str, token: Optional[str] = None, backend: Optional[str] = None,
                 timeout: float = 3600.0, retries: int = 8, wait_s: float = 30.0, backoff_s: float = 0.5,
                 max_backoff_s: float = 15.0, workers: Optional[int] = None):
        from ksdk.extras import require

        require("httpx", extra="service", what="an evaluation service (--evaluator URL)")
        if not url.startswith(("http://", "https://")):
            raise ServiceError(f"evaluator URL {url!r} must start with http:// or https:// "
                               "(e.g. http://127.0.0.1:8765, where `ksdk serve` listens)")
        self.url = url.rstrip("/")
        self.token = token if token is not None else _token_from_env()
        self.backend = backend
        self._workers = workers
        self.timeout, self.retries, self.wait_s = timeout, retries, wait_s
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self._info: Optional[ServiceInfo] = None
        self.retried: Counter[str] = Counter()  # why requests were retried: busy, server_error, connection, resubmit
        self._client = None
        self._client_loop = None

    # -- Evaluator -------------------------------------------------------------------------------
    @property
    def workers(self) -> int:
        return self._workers or self.service_info().workers

    def info(self) -> EvaluatorInfo:
        return self.service_info().evaluator_info()

    def hints(self) -> str:
        return self.service_info().hints

    def service_info(self, refresh: bool = False) -> ServiceInfo:
        """GET /info (cached), checked against the backend this evaluator was asked for."""
        if self._info is None or refresh:
            import httpx

            with httpx.Client(base_url=self.url, headers=self._headers(), timeout=30.0) as c:
                self._set_info(self._retry_sync(lambda: c.get("/info")))
        return self._info

    async def evaluate(self, task: Task, candidate: Candidate) -> EvalResult:
        if self._info is None:
            self._set_info(await self._request("GET", "/info", time.monotonic() + 120.0))
        key = idempotency_key(task, candidate, self._info.backend)
        body = EvaluateRequest(task=task, candidate=candidate, idempotency_key=key,
                               wait_s=self.wait_s).model_dump_json()
        deadline = time.monotonic() + self.timeout
        job_id: Optional[str] = None
        while True:
            if job_id is None:
                r = await self._request("POST", "/evaluate", deadline, content=body)
            else:
                r = await self._request("GET", f"/jobs/{job_id}", deadline, params={"wait": self.wait_s},
                                        ok_404=True)
                if r.status_code == 404:  # the service restarted before finishing it: submit again, same key
                    self.retried["resubmit"] += 1
                    job_id = None
                    continue
            if r.status_code == 413:
                return _unsent(candidate, task, f"the service refused the request: {_detail(r)}")
            if job_id is None and r.status_code == 200:
                return EvalResult.model_validate_json(r.content)
            st = JobStatus.model_validate_json(r.content)
            if st.state == JobState.DONE and st.result is not None:
                return st.result
            if st.state == JobState.FAILED:  # a harness failure there: submitting the key again re-runs it
                self.retried["resubmit"] += 1
                job_id = None
                await asyncio.sleep(self.backoff_s)
                continue
            job_id = st.id
            if time.monotonic() > deadline:
                return _unsent(candidate, task, f"no verdict from {self.url} within {self.timeout:g} s "
                                                f"(job {job_id} still {st.state.value})")

    async def close(self) -> None:
        if self._client is not None:
            try:
                await self._client.aclose()
            except RuntimeError:  # made on an event loop that is gone: nothing left to close
                pass
            self._client = None

    # -- HTTP ------------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        h = {"content-type": "application/json"}
        if self.token:
            h["authorization"] = f"Bearer {self.token}"
        return h

    def _async_client(self):
        import httpx

        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(
                base_url=self.url, headers=self._headers(),
                timeout=httpx.Timeout(self.wait_s + 60.0, connect=10.0),
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
            self._client_loop = loop
        return self._client

    def _delay(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)

    async def _request(self, method: str, path: str, deadline: float, ok_404: bool = False, **kw):
        """One request, retried on connection errors, 5xx, 429 and 503 (honouring Retry-After)."""
        import httpx

        failures = 0
        while True:
            why = ""
            try:
                r = await self._async_client().request(method, path, **kw)
            except httpx.TransportError as e:
                why = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                self.retried["connection"] += 1
            else:
                wait = self._check(r, ok_404)
                if wait is None:
                    return r
                if r.status_code in (429, 503):  # back-pressure, not failure: wait as told, up to the deadline
                    self.retried["busy"] += 1
                    if time.monotonic() + wait > deadline:
                        raise ServiceError(f"{self.url} stayed busy (HTTP {r.status_code}) past the "
                                           f"{self.timeout:g} s timeout: {_detail(r)}")
                    await asyncio.sleep(wait)
                    continue
                why = f"HTTP {r.status_code}: {_detail(r)}"
                self.retried["server_error"] += 1
            failures += 1
            if failures > self.retries:
                raise ServiceError(f"evaluation service at {self.url} failed {failures} times in a row ({why}); "
                                   "is `ksdk serve` running there and reachable?")
            await asyncio.sleep(self._delay(failures))

    def _retry_sync(self, call):
        import httpx

        for attempt in range(1, self.retries + 2):
            try:
                r = call()
            except httpx.TransportError as e:
                why = f"{type(e).__name__}: {e}"
            else:
                wait = self._check(r, False)
                if wait is None:
                    return r
                why = f"HTTP {r.status_code}: {_detail(r)}"
            if attempt <= self.retries:
                time.sleep(self._delay(attempt))
        raise ServiceError(f"evaluation service at {self.url} failed {self.retries + 1} times in a row ({why}); "
                           "is `ksdk serve` running there and reachable?")

    def _check(self, r, ok_404: bool) -> Optional[float]:
        """None when the answer is usable; seconds to wait when it is worth retrying; raises otherwise."""
        code = r.status_code
        if code < 300 or code == 413 or (code == 404 and ok_404):
            return None
        if code in (429, 503) or code >= 500:
            try:
                return max(0.05, float(r.headers.get("retry-after", "")))
            except ValueError:
                return 1.0
        if code == 401 or code == 403:
            if not self.token:
                raise ServiceError(f"the service at {self.url} needs a token and none was given: set "
                                   f"{TOKEN_ENV}, or {TOKEN_FILE_ENV} to the service's token file "
                                   "(`ksdk serve` prints where it is)")
            raise ServiceError(f"the service at {self.url} rejected the token (wrong token, HTTP {code}): set "
                               f"{TOKEN_ENV} to the contents of the service's token file, or {TOKEN_FILE_ENV} "
                               "to its path (`ksdk serve` prints where it is)")
        raise ServiceError(f"the service at {self.url} answered HTTP {code}: {_detail(r)}")

    def _set_info(self, r) -> None:
        info = ServiceInfo.model_validate_json(r.content)
        if self.backend and info.backend != self.backend:
            raise ServiceError(f"the service at {self.url} runs backend '{info.backend}', not '{self.backend}': "
                               f"ask for --backend {info.backend}, or point at a service for {self.backend}")
        self._info = info


def _unsent(candidate: Candidate, task: Task, message: str) -> EvalResult:
    """A harness verdict for a candidate the service never judged (not the candidate's fault)."""
    return EvalResult(candidate_id=candidate.id, task=task.name, status=Status.INFRA_ERROR,
                      error_kind=ErrorKind.INFRA, message=message)
