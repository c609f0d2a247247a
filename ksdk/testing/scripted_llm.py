"""TEST DOUBLE: a real OpenAI-compatible HTTP server on 127.0.0.1 that answers chat completions from a script.

    with ScriptedLLM(["```python\\n...\\n```", ScriptedReply.error(500), ScriptedReply("late", delay_s=2)]) as llm:
        LLMMutator(model="openai/scripted", api_base=llm.url, api_key="test")

Replies are served in order (or by a `responder(body) -> reply` callable); each carries usage token counts.
It records every request body, the API key each request carried (`keys`: the bearer token, None without one),
and the most requests it ever served at once (`max_in_flight`). When the script runs out it answers 400.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Sequence, Union


@dataclass
class ScriptedReply:
    """One scripted answer: the assistant's text, or an HTTP error status; optionally late."""

    content: str = ""
    status: int = 200
    delay_s: float = 0.0
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None

    @classmethod
    def error(cls, status: int = 500, message: str = "scripted server error") -> "ScriptedReply":
        """An HTTP error reply (e.g. 500, 503 or 429 to exercise retries)."""
        return cls(content=message, status=status)


Script = Union[Sequence[Union[str, ScriptedReply]], Callable[[dict], Union[str, ScriptedReply]]]


class ScriptedLLM:
    """The server; a context manager. `url` is the api_base to hand to litellm (ends in /v1)."""

    def __init__(self, replies: Script = (), model: str = "scripted"):
        self._responder = replies if callable(replies) else None
        self._script = [] if callable(replies) else list(replies)
        self.model = model
        self.requests: list[dict] = []
        self.keys: list[Optional[str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the ScriptedLLM first (use it as a context manager)"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def add(self, *replies: Union[str, ScriptedReply]) -> None:
        """Append replies to the script."""
        with self._lock:
            self._script.extend(replies)

    def _next(self, body: dict, key: Optional[str]) -> ScriptedReply:
        with self._lock:
            self.requests.append(body)
            self.keys.append(key)
            if self._responder is not None:
                try:
                    reply: Any = self._responder(body)
                except Exception as exc:  # a broken test responder: a 400 the client will not retry, not a hang
                    reply = ScriptedReply.error(400, f"scripted_llm: the responder raised {type(exc).__name__}: {exc}")
            elif self._script:
                reply = self._script.pop(0)
            else:
                reply = ScriptedReply.error(
                    400, f"scripted_llm: the script is exhausted after {len(self.requests) - 1} replies"
                )
        return reply if isinstance(reply, ScriptedReply) else ScriptedReply(content=str(reply))

    def start(self) -> "ScriptedLLM":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                    pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": owner.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError as exc:
                    self._send(400, {"error": {"message": f"bad JSON: {exc}", "type": "invalid_request_error"}})
                    return
                with owner._lock:
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                auth = self.headers.get("Authorization") or ""
                try:
                    reply = owner._next(body, auth[len("Bearer "):] if auth.startswith("Bearer ") else None)
                    if reply.delay_s:
                        owner._stop.wait(reply.delay_s)  # a slow model; returns early when the server stops
                    if reply.status != 200:
                        self._send(reply.status, {"error": {"message": reply.content, "type": "server_error"}})
                        return
                    prompt_text = "".join(str(m.get("content", "")) for m in body.get("messages", []))
                    tokens_in = reply.prompt_tokens if reply.prompt_tokens is not None else len(prompt_text) // 4
                    tokens_out = (
                        reply.completion_tokens if reply.completion_tokens is not None else len(reply.content) // 4
                    )
                    self._send(
                        200,
                        {
                            "id": f"chatcmpl-scripted-{len(owner.requests)}",
                            "object": "chat.completion",
                            "created": int(time.time()),
                            "model": body.get("model", owner.model),
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": reply.content},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {
                                "prompt_tokens": tokens_in,
                                "completion_tokens": tokens_out,
                                "total_tokens": tokens_in + tokens_out,
                            },
                        },
                    )
                finally:
                    with owner._lock:
                        owner.in_flight -= 1

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-llm", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "ScriptedLLM":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
