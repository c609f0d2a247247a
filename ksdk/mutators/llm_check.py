"""The LLM mutator's pre-flight, made before a run folder exists or anything is evaluated: a key is there, and the
endpoint answers a cheap request within CHECK_TIMEOUT_S (an --api-base server's model list; a hosted provider's
one-token completion), else one line naming the URL or the provider and the fix."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any, Optional

from ksdk.errors import PluginError

CHECK_TIMEOUT_S = 10.0
SERVER_FIX = ("start the server (vLLM: `vllm serve MODEL`; Ollama: `ollama serve`, its URL is http://HOST:11434/v1) "
              "or fix --api-base")


def models_url(api_base: str) -> str:
    """The OpenAI-compatible model list under an api_base ('http://h:8000/v1' -> 'http://h:8000/v1/models')."""
    return api_base.rstrip("/") + "/models"


def probe_server(api_base: str, api_key: Optional[str], timeout_s: float = CHECK_TIMEOUT_S) -> Optional[str]:
    """Why the server at api_base cannot serve the run (None when it answered): not reachable, or the key refused.
    Any other answer (even 404: a server without a model list) counts as reachable."""
    req = urllib.request.Request(models_url(api_base), headers={"Authorization": f"Bearer {api_key}"}
                                 if api_key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            resp.read(1 << 16)
        return None
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            return (f"the LLM server at {api_base} refused the API key (HTTP {e.code}{_detail(e)}): pass --api-key "
                    "KEY or set KSDK_API_KEY with a key it accepts")
        return None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        return f"cannot reach the LLM server at {api_base} ({reason}): {SERVER_FIX}"


def _detail(e: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(e.read(4096) or b"{}")
        msg = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else body.get("detail")
        return f": {str(msg)[:200]}" if msg else ""
    except (ValueError, OSError, AttributeError):
        return ""


async def check_llm(mutator: Any) -> None:
    """Raise PluginError (one line, with the fix) when an LLMMutator cannot work: no key for a hosted model, an
    --api-base server that does not answer or refuses the key, a hosted provider that refuses the key or is out of
    reach. Takes at most about CHECK_TIMEOUT_S per model; a scripted `mock_response` is never checked."""
    if mutator.mock_response is not None:
        return
    if mutator.api_base:
        why = await asyncio.to_thread(probe_server, mutator.api_base, mutator.api_key,
                                      min(CHECK_TIMEOUT_S, mutator.timeout_s))
        if why:
            raise PluginError(why)
        return
    from ksdk.mutators.llm import _fatal, _KEY_FIX, _litellm

    litellm = _litellm()
    for model in dict.fromkeys(mutator.models):
        missing = [] if mutator.api_key else mutator._key_vars(litellm, model)
        if missing:
            raise PluginError(f"no API key for {model}: {_KEY_FIX} (or {', '.join(missing)}); a local server that "
                              "needs none: --api-base URL")
        try:
            await asyncio.wait_for(litellm.acompletion(
                model=model, messages=[{"role": "user", "content": "Reply with OK."}], max_tokens=1,
                timeout=CHECK_TIMEOUT_S, num_retries=0, max_retries=0, drop_params=True,
                **({"api_key": mutator.api_key} if mutator.api_key else {})), timeout=CHECK_TIMEOUT_S + 2)
        except Exception as exc:  # a refused key or model is fatal; so is silence; a busy provider (429) is not
            fatal = _fatal(exc, model, None, missing)
            names = {cls.__name__ for cls in type(exc).__mro__}
            if fatal:
                raise PluginError(f"llm mutator: {fatal}") from None
            if isinstance(exc, asyncio.TimeoutError) or names & {"APIConnectionError", "Timeout", "APITimeoutError"}:
                raise PluginError(f"cannot reach {model}'s provider ({type(exc).__name__}: {str(exc)[:200]}): check "
                                  "the network, or use a local server with --api-base URL") from None
