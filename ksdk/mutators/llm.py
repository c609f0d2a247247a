"""LLM mutator: asks a model (any litellm provider, local vLLM/Ollama via api_base, weighted ensembles) for a child.

Never raises for a bad reply, a refused budget or a failed call: the outcome carries `error`, and the mutation
keeps the prompt and reply for the attempt log. Retries transient failures (timeouts, 429, 5xx, connection
errors) with exponential backoff and jitter; an error no retry can mend (a rejected or missing key, no permission,
an unknown model, a malformed request, a prompt over the context window) is a `fatal` outcome whose error names
the fix, and the run stops. Limits concurrent calls; accounts tokens and dollars, with a cap that counts calls
still in flight.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import time
from typing import Any, Optional, Union

from ksdk.errors import BudgetError, PluginError
from ksdk.interfaces.mutator import MutationOutcome, MutationRequest, Mutator
from ksdk.models import Candidate, Mutation
from ksdk.mutators.edits import ReplyError, has_edit_blocks, program_from_reply
from ksdk.mutators.prompts import build_messages, render

CALL_NOTE = "[call] "  # notes about the API call itself (retries, pricing): kept in the log, not shown to the model
TRANSIENT_STATUS = {408, 409, 425, 429}  # and every 5xx
REPLY_FORMATS = ("auto", "full", "edits")
KEY_ENV = "KSDK_API_KEY"
NO_KEY = "no-key-needed"  # sent to an --api-base server when no key is known: litellm refuses to call without one
_KEY_FIX = f"pass --api-key KEY or set {KEY_ENV}"


INSTALL_HINT = "the llm mutator needs litellm: pip install \"ksdk[llm]\" (from a checkout: pip install -e \".[llm]\")"


def _litellm():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of the price list
    try:
        import litellm
    except ImportError:
        raise PluginError(INSTALL_HINT) from None
    litellm.suppress_debug_info = True
    return litellm


def _is_transient(exc: BaseException) -> bool:
    """Timeouts, lost connections, rate limits and server errors: worth another try after a pause."""
    if isinstance(exc, (asyncio.TimeoutError, ConnectionError)):
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and (status in TRANSIENT_STATUS or status >= 500):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"Timeout", "APITimeoutError", "APIConnectionError", "RateLimitError",
                         "InternalServerError", "ServiceUnavailableError", "BadGatewayError"})


def _fatal(exc: BaseException, model: str, api_base: Optional[str], key_vars: list[str]) -> Optional[str]:
    """The one-line reason, naming the fix, when no retry of this call (nor any later call) can succeed."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    text = str(exc)
    detail = text.split(" - ", 1)[-1].strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
    provider_vars = f" (or {', '.join(key_vars)})" if key_vars else ""
    where = f" at {api_base}" if api_base else ""
    if "Missing credentials" in text or "api_key client option must be set" in text:
        return f"no API key for {model}: {_KEY_FIX}{provider_vars}; a local server that needs none: --api-base URL"
    if "AuthenticationError" in names or status == 401:
        return f"{model}{where} rejected the API key ({detail}): {_KEY_FIX}{provider_vars} with a valid key"
    if "PermissionDeniedError" in names or status == 403:
        return (f"{model}{where}: permission denied ({detail}): use a key that may call this model, or another "
                "--model")
    if "NotFoundError" in names or status == 404:
        return (f"{model} not found{where} ({detail}): check --model (provider/name, as litellm spells it) and "
                "--api-base")
    if "ContextWindowExceededError" in names or status == 413:
        return (f"the prompt does not fit {model}'s context window ({detail}): lower the prompt budget "
                "(--mutator-option max_prompt_chars=24000) or use a model with a longer context")
    if names & {"BadRequestError", "UnprocessableEntityError", "UnsupportedParamsError"} or status in (400, 422):
        return (f"{model}{where} rejected the request as invalid ({detail}): check --model and the "
                "--mutator-option settings")
    return None


class LLMMutator(Mutator):
    """Proposes children from an LLM's reply: a full program or SEARCH/REPLACE edits against the parent."""

    name = "llm"

    def __init__(
        self,
        model: Union[str, list[str]] = "openai/gpt-4o-mini",
        weights: Optional[list[float]] = None,
        api_base: Optional[str] = None,
        api_key: Optional[str] = None,
        temperature: float = 0.7,
        max_tokens: Optional[int] = 8192,
        timeout_s: float = 120.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        max_concurrency: int = 4,
        max_cost_usd: Optional[float] = None,
        reply_format: str = "auto",
        max_prompt_chars: int = 48_000,
        mock_response: Optional[str] = None,
        seed: Optional[int] = None,
        models: Optional[list[str]] = None,
    ):
        """`api_key` defaults to $KSDK_API_KEY, else litellm's provider variables (OPENAI_API_KEY, ...); with
        `api_base` and no key at all, calls go out without one (local servers need none). `seed` seeds the model
        choice and the seed sent with each call (one per call, drawn from it: reproducible, never repeated)."""
        if importlib.util.find_spec("litellm") is None:  # say so before a run starts, not at its first call
            raise PluginError(INSTALL_HINT)
        # `models` (a list) is an alias of `model` for callers that always pass a list, like the CLI.
        chosen = models if models else model
        self.models = [chosen] if isinstance(chosen, str) else list(chosen)
        if not self.models or not all(isinstance(m, str) and m for m in self.models):
            raise PluginError("llm mutator: give model='provider/name' or a non-empty list of such names")
        if weights is not None and (len(weights) != len(self.models) or min(weights) < 0 or sum(weights) <= 0):
            raise PluginError(
                f"llm mutator: weights {weights} must be one non-negative number per model ({len(self.models)}), "
                "not all zero"
            )
        if reply_format not in REPLY_FORMATS:
            raise PluginError(f"llm mutator: reply_format={reply_format!r}; use one of {', '.join(REPLY_FORMATS)}")
        if max_cost_usd is not None and max_cost_usd < 0:
            raise BudgetError(f"llm mutator: max_cost_usd={max_cost_usd} must be >= 0 dollars")
        if max_concurrency < 1 or retries < 0 or timeout_s <= 0:
            raise PluginError("llm mutator: max_concurrency >= 1, retries >= 0 and timeout_s > 0 are required")
        self.weights = weights
        self.api_base, self.api_key = api_base, api_key or os.environ.get(KEY_ENV) or None
        self.temperature, self.max_tokens, self.timeout_s = temperature, max_tokens, timeout_s
        self.retries, self.backoff_s = retries, backoff_s
        self.max_concurrency, self.max_cost_usd = max_concurrency, max_cost_usd
        self.reply_format, self.max_prompt_chars = reply_format, max_prompt_chars
        self.mock_response, self.seed = mock_response, seed
        self.rng = random.Random(seed)
        self._call_seeds = random.Random(seed)  # apart from `rng`, so retries and model picks do not shift it
        self._semaphore: Optional[asyncio.Semaphore] = None
        self._semaphore_loop: Optional[asyncio.AbstractEventLoop] = None
        self._spent = 0.0
        self._reserved = 0.0
        self.tokens_in = 0
        self.tokens_out = 0
        self.calls = 0

    async def check(self) -> None:
        """The key is there and the endpoint answers within 10 s (ksdk.mutators.llm_check), else one line."""
        from ksdk.mutators.llm_check import check_llm

        await check_llm(self)

    @property
    def cost_usd(self) -> float:
        """Dollars spent on completed calls."""
        return self._spent

    @property
    def budget_exhausted(self) -> bool:
        """True once spent money reaches max_cost_usd."""
        return self.max_cost_usd is not None and self._spent >= self.max_cost_usd

    def _pick_model(self) -> str:
        if len(self.models) == 1:
            return self.models[0]
        return self.rng.choices(self.models, weights=self.weights)[0]

    def _estimate(self, litellm: Any, model: str, prompt: str) -> float:
        """Upper-bound cost of one call: prompt tokens (~4 chars each) plus max_tokens of output; 0 if unpriced."""
        try:
            cost_in, cost_out = litellm.cost_per_token(
                model=model, prompt_tokens=len(prompt) // 4 + 1, completion_tokens=self.max_tokens or 4096
            )
            return float(cost_in + cost_out)
        except Exception:  # a model litellm has no price for (local servers): counted as free
            return 0.0

    def _key_vars(self, litellm: Any, model: str) -> list[str]:
        """The provider's key variables litellm found unset (e.g. ['OPENAI_API_KEY']); [] when all are set."""
        try:
            return [str(v) for v in litellm.validate_environment(model).get("missing_keys") or []]
        except Exception:  # a provider litellm cannot check: assume it is configured
            return []

    async def _call(self, litellm: Any, model: str, messages: list[dict], seed: Optional[int]) -> Any:
        kwargs: dict[str, Any] = dict(
            model=model,
            messages=messages,
            temperature=self.temperature,
            timeout=self.timeout_s,
            max_retries=0,  # retries are ours: backoff, jitter and accounting in one place
            num_retries=0,
            drop_params=True,  # a provider that lacks `seed` or `temperature` ignores it instead of failing
        )
        if self.max_tokens:
            kwargs["max_tokens"] = self.max_tokens
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        elif self.api_base and any("KEY" in v for v in self._key_vars(litellm, model)):
            kwargs["api_key"] = NO_KEY
        if self.mock_response is not None:
            kwargs["mock_response"] = self.mock_response
        if seed is not None:
            kwargs["seed"] = seed
        # litellm enforces `timeout` on the HTTP call; wait_for guards against a provider that ignores it.
        return await asyncio.wait_for(litellm.acompletion(**kwargs), timeout=self.timeout_s + 5.0)

    async def _complete(self, litellm: Any, model: str, messages: list[dict], notes: list[str],
                        seed: Optional[int]) -> Any:
        attempt = 0
        while True:
            try:
                return await self._call(litellm, model, messages, seed)
            except Exception as exc:
                if attempt >= self.retries or not _is_transient(exc) or self._fatal(litellm, exc, model):
                    raise
                delay = self.backoff_s * (2**attempt) * (0.5 + self.rng.random())
                notes.append(f"{CALL_NOTE}attempt {attempt + 1} failed ({type(exc).__name__}: {str(exc)[:200]}); "
                             f"retrying in {delay:.2f} s")
                attempt += 1
                await asyncio.sleep(delay)

    def _fatal(self, litellm: Any, exc: BaseException, model: str) -> Optional[str]:
        return _fatal(exc, model, self.api_base, [] if self.api_key else self._key_vars(litellm, model))

    def _cost(self, litellm: Any, response: Any, model: str, notes: list[str]) -> float:
        try:
            return float(litellm.completion_cost(completion_response=response) or 0.0)
        except Exception:
            notes.append(f"{CALL_NOTE}litellm has no price for {model}: its cost is counted as $0")
            return 0.0

    async def propose(self, request: MutationRequest) -> MutationOutcome:
        """Ask the model for a child of `request.parent`; failures come back as an outcome with `error`."""
        messages = build_messages(request, self.reply_format, self.max_prompt_chars)
        prompt = render(messages)
        model = self._pick_model()
        seed = None if self.seed is None else self._call_seeds.randrange(2**31)
        mutation = Mutation(mutator=self.name, model=model, prompt=prompt, reply_format=self.reply_format)
        litellm = _litellm()
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore_loop is not loop:  # a semaphore serves one event loop
            self._semaphore, self._semaphore_loop = asyncio.Semaphore(self.max_concurrency), loop
        async with self._semaphore:
            estimate = self._estimate(litellm, model, prompt)
            if self.max_cost_usd is not None and self._spent + self._reserved + estimate > self.max_cost_usd:
                return MutationOutcome(
                    mutation=mutation,
                    error=(
                        f"llm budget cap: spent ${self._spent:.4f} + in flight ${self._reserved:.4f} + this call's "
                        f"estimate ${estimate:.4f} would exceed max_cost_usd=${self.max_cost_usd:.4f}; "
                        "raise the cap to continue"
                    ),
                )
            self._reserved += estimate
            started = time.perf_counter()
            try:
                response = await self._complete(litellm, model, messages, mutation.notes, seed)
            except Exception as exc:
                mutation.latency_s = time.perf_counter() - started
                fatal = self._fatal(litellm, exc, model)
                if fatal:
                    return MutationOutcome(mutation=mutation, error=f"llm mutator: {fatal}", fatal=True)
                kind = "timed out" if "imeout" in type(exc).__name__ else "failed"
                attempts = 1 + sum(n.startswith(CALL_NOTE + "attempt") for n in mutation.notes)
                where = f" at {self.api_base}" if self.api_base else ""
                return MutationOutcome(
                    mutation=mutation,
                    error=f"llm call to {model}{where} {kind} after {attempts} attempt(s): "
                    f"{type(exc).__name__}: {str(exc)[:500]}",
                )
            finally:
                self._reserved -= estimate
        mutation.latency_s = time.perf_counter() - started
        self.calls += 1
        usage = getattr(response, "usage", None)
        mutation.tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        mutation.tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        mutation.cost_usd = self._cost(litellm, response, model, mutation.notes)
        self.tokens_in += mutation.tokens_in
        self.tokens_out += mutation.tokens_out
        self._spent += mutation.cost_usd
        try:
            reply = response.choices[0].message.content or ""
        except (AttributeError, IndexError):
            reply = ""
        mutation.reply = reply
        parent = request.parent.candidate
        try:
            source, used, notes = program_from_reply(reply, parent.source, request.language, self.reply_format)
        except ReplyError as exc:
            mutation.reply_format = "edits" if has_edit_blocks(reply) else "full"
            mutation.notes.extend(exc.notes or [f"your last answer was unusable: {exc}"])
            return MutationOutcome(mutation=mutation, error=f"unusable reply from {model}: {exc}")
        mutation.reply_format = used
        mutation.notes.extend(notes)
        child = Candidate(
            source=source,
            language=request.language,
            parent_ids=[parent.id],
            generation=parent.generation + 1,
            island=parent.island,
            mutation=mutation,
        )
        return MutationOutcome(candidate=child, mutation=mutation)
