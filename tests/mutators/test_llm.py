"""LLMMutator for real through litellm: a local OpenAI-compatible server with scripted replies, and mock_response."""

import asyncio
import re
import subprocess
import sys

import pytest

from ksdk.interfaces.mutator import MutationRequest, Scored
from ksdk.models import Candidate, ErrorKind, EvalResult, Stage, Status, Task
from ksdk.mutators.llm import LLMMutator
from ksdk.mutators.prompts import build_messages
from ksdk.registry import load
from ksdk.testing.scripted_llm import ScriptedLLM, ScriptedReply
from ksdk_triton_nvidia.backend import TRITON

TASK = Task(
    name="relu",
    source="import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return torch.relu(x)\n",
)
PARENT_SRC = "import torch\nclass ModelNew(torch.nn.Module):\n    def forward(self, x):\n        return torch.relu(x)\n"
CHILD_SRC = PARENT_SRC.replace("torch.relu(x)", "x.clamp(min=0)")
FULL = f"Here is a faster version:\n```python\n{CHILD_SRC}```\nIt avoids a copy."
EDITS = "<<<<<<< SEARCH\n        return torch.relu(x)\n=======\n        return x.clamp(min=0)\n>>>>>>> REPLACE\n"


def request(notes=(), inspirations=()) -> MutationRequest:
    failed = EvalResult(stage=Stage.CORRECTNESS, status=Status.FAILED, error_kind=ErrorKind.VALUE,
                        message="out[0] differs from the reference by 0.5")
    parent = Scored(candidate=Candidate(source=PARENT_SRC, generation=2, island=1), result=failed)
    return MutationRequest(task=TASK, parent=parent, hints="Kernels must be @triton.jit functions.",
                           backend="triton_nvidia", language=TRITON, notes=list(notes),
                           inspirations=list(inspirations))


def propose(mutator: LLMMutator, req: MutationRequest):
    return asyncio.run(mutator.propose(req))


def scripted(server: ScriptedLLM, **kw) -> LLMMutator:
    kw.setdefault("backoff_s", 0.01)
    return LLMMutator(model="openai/scripted", api_base=server.url, api_key="test-key", **kw)


def test_full_program_reply_makes_a_child_with_its_mutation_recorded():
    with ScriptedLLM([ScriptedReply(FULL, prompt_tokens=321, completion_tokens=45)]) as server:
        req = request()
        out = propose(scripted(server), req)
    assert out.error is None
    child = out.candidate
    assert child.source == CHILD_SRC and child.language == "triton"
    assert child.parent_ids == [req.parent.candidate.id] and child.generation == 3 and child.island == 1
    m = child.mutation
    assert (m.mutator, m.model, m.reply_format, m.reply) == ("llm", "openai/scripted", "full", FULL)
    assert (m.tokens_in, m.tokens_out) == (321, 45) and m.cost_usd == 0.0 and m.latency_s > 0
    assert any("no price" in n for n in m.notes)
    # The prompt reached the server: task, hints, parent source and its structured feedback.
    sent = server.requests[0]["messages"][-1]["content"]
    for part in ("class Model(", "@triton.jit", PARENT_SRC.strip(), "wrong_value", "differs from the reference"):
        assert part in sent and part in m.prompt


def test_edit_block_reply_applies_to_the_parent():
    with ScriptedLLM([EDITS]) as server:
        out = propose(scripted(server, reply_format="edits"), request())
    assert out.candidate.source == CHILD_SRC and out.mutation.reply_format == "edits"
    assert "<<<<<<< SEARCH" in server.requests[0]["messages"][-1]["content"]


def test_malformed_reply_is_a_recorded_failure_and_its_problem_goes_to_the_next_prompt():
    bad_edit = "<<<<<<< SEARCH\n        return relu(x)\n=======\n        return x\n>>>>>>> REPLACE"
    with ScriptedLLM(["Sorry, I cannot help with that.", bad_edit, FULL]) as server:
        mutator = scripted(server)
        prose = propose(mutator, request())
        assert prose.candidate is None and "no triton program" in prose.error
        assert prose.mutation.reply.startswith("Sorry") and "class Model(" in prose.mutation.prompt
        miss = propose(mutator, request())
        assert miss.candidate is None and "did not apply" in miss.error
        note = [n for n in miss.mutation.notes if "edit block 1 did not apply" in n]
        assert note and "return relu(x)" in note[0]
        fixed = propose(mutator, request(notes=miss.mutation.notes))
    assert fixed.candidate is not None
    last_prompt = server.requests[-1]["messages"][-1]["content"]
    assert "edit block 1 did not apply" in last_prompt and "[call]" not in last_prompt


def test_transient_errors_are_retried_then_succeed():
    with ScriptedLLM([ScriptedReply.error(500), ScriptedReply.error(429), FULL]) as server:
        out = propose(scripted(server, retries=3), request())
    assert out.candidate is not None and len(server.requests) == 3
    assert sum("retrying" in n for n in out.mutation.notes) == 2


@pytest.mark.parametrize("status, message, fix", [
    (401, "Incorrect API key provided", r"rejected the API key \(Incorrect API key provided\): pass --api-key KEY or "
                                        r"set KSDK_API_KEY"),
    (403, "project has no access", r"permission denied \(project has no access\): use a key that may call"),
    (404, "The model `x` does not exist", r"openai/scripted not found at http://127\.0\.0\.1:\d+/v1 .*check --model"),
    (400, "This model's maximum context length is 8192 tokens", r"context window .*max_prompt_chars"),
    (400, "temperature must be <= 2", r"rejected the request as invalid \(temperature must be <= 2\)"),
    (422, "unprocessable", r"rejected the request as invalid"),
])
def test_errors_no_retry_can_mend_are_fatal_at_once_and_name_the_fix(status, message, fix):
    with ScriptedLLM([ScriptedReply.error(status, message), FULL]) as server:
        out = propose(scripted(server, retries=3), request())
    assert out.candidate is None and out.fatal and len(server.requests) == 1
    assert re.search(fix, out.error) and "\n" not in out.error


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_rate_limits_and_server_errors_are_retried_and_never_fatal(status):
    with ScriptedLLM([ScriptedReply.error(status)] * 2) as server:
        out = propose(scripted(server, retries=1), request())
    assert out.candidate is None and not out.fatal and "after 2 attempt(s)" in out.error
    assert len(server.requests) == 2


def test_a_server_that_needs_no_key_is_reached_without_one(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("KSDK_API_KEY", raising=False)
    with ScriptedLLM([FULL]) as server:
        out = propose(LLMMutator(model="openai/scripted", api_base=server.url), request())
    assert out.error is None and len(server.requests) == 1 and server.keys[0] not in (None, "")


def test_the_key_comes_from_the_argument_else_ksdk_api_key(monkeypatch):
    monkeypatch.setenv("KSDK_API_KEY", "from-env")
    with ScriptedLLM([FULL, FULL]) as server:
        propose(LLMMutator(model="openai/scripted", api_base=server.url), request())
        propose(LLMMutator(model="openai/scripted", api_base=server.url, api_key="given"), request())
    assert server.keys == ["from-env", "given"]


def test_no_key_and_no_server_is_fatal_before_any_request(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("KSDK_API_KEY", raising=False)
    out = propose(LLMMutator(model="openai/gpt-4o", retries=3, backoff_s=0.01), request())
    assert out.fatal and "no API key for openai/gpt-4o: pass --api-key KEY or set KSDK_API_KEY" in out.error
    assert "OPENAI_API_KEY" in out.error and not any("retrying" in n for n in out.mutation.notes)


def test_each_call_sends_its_own_seed_drawn_from_the_run_seed():
    def seeds(run_seed):
        with ScriptedLLM([FULL] * 3) as server:
            mutator = scripted(server, seed=run_seed)
            for _ in range(3):
                propose(mutator, request())
        return [r["seed"] for r in server.requests]

    first = seeds(7)
    assert len(set(first)) == 3 and seeds(7) == first and seeds(8) != first


def test_mock_response_errors_through_litellm_retry_or_stop():
    limited = propose(LLMMutator(model="openai/gpt-4o", mock_response="litellm.RateLimitError", retries=1,
                                 backoff_s=0.01), request())
    assert not limited.fatal and "RateLimitError" in limited.error and "retrying" in limited.mutation.notes[0]
    too_long = propose(LLMMutator(model="openai/gpt-4o", mock_response="litellm.ContextWindowExceededError",
                                  retries=3), request())
    assert too_long.fatal and "context window" in too_long.error and too_long.mutation.notes == []


def test_a_slow_reply_times_out():
    with ScriptedLLM([ScriptedReply(FULL, delay_s=30)]) as server:
        out = propose(scripted(server, timeout_s=0.5, retries=0), request())
    assert out.candidate is None and "timed out" in out.error and out.mutation.latency_s < 10


def test_mock_response_through_litellm_with_a_priced_model():
    mutator = LLMMutator(model="openai/gpt-4o", mock_response=FULL)
    out = propose(mutator, request())
    assert out.candidate.source == CHILD_SRC
    assert out.mutation.cost_usd > 0 and mutator.cost_usd == pytest.approx(out.mutation.cost_usd)


def test_budget_cap_stops_calls():
    # gpt-4o prices: $2.5 / Mtok in, $10 / Mtok out -> 1000 in + 500 out = $0.0075 a call.
    replies = [ScriptedReply(FULL, prompt_tokens=1000, completion_tokens=500) for _ in range(4)]
    with ScriptedLLM(replies) as server:
        mutator = LLMMutator(model="openai/gpt-4o", api_base=server.url, api_key="k", max_tokens=100,
                             max_cost_usd=0.016)
        outs = [propose(mutator, request()) for _ in range(3)]
    assert [o.candidate is not None for o in outs] == [True, True, False]
    assert "budget cap" in outs[2].error and "max_cost_usd" in outs[2].error
    assert len(server.requests) == 2 and mutator.cost_usd == pytest.approx(0.015)


def test_concurrency_limit_is_honoured_at_the_server():
    with ScriptedLLM([ScriptedReply(FULL, delay_s=0.5) for _ in range(6)]) as server:
        mutator = scripted(server, max_concurrency=2)

        async def many():
            return await asyncio.gather(*(mutator.propose(request()) for _ in range(6)))

        outs = asyncio.run(many())
    assert all(o.candidate is not None for o in outs)
    assert server.max_in_flight == 2 and len(server.requests) == 6


def test_ensemble_weights_pick_models():
    with ScriptedLLM([FULL] * 4) as server:
        mutator = LLMMutator(model=["openai/never", "openai/always"], weights=[0.0, 1.0], api_base=server.url,
                             api_key="k", seed=1)
        for _ in range(4):
            assert propose(mutator, request()).mutation.model == "openai/always"
    assert {r["model"] for r in server.requests} == {"always"}


def test_prompt_stays_within_its_budget_and_keeps_the_parent_whole():
    big = Scored(candidate=Candidate(source="x = 1\n" * 5000), result=EvalResult(status=Status.OK,
                 stage=Stage.PERFORMANCE, speedup=1.5))
    req = request(inspirations=[big, big])
    req.task = TASK.model_copy(update={"source": TASK.source + "# padding\n" * 20000})
    user = build_messages(req, "auto", max_chars=20_000)[-1]["content"]
    assert len(user) < 22_000 and PARENT_SRC.strip() in user
    assert "source left out" in user and "score 1.500" in user and "chars trimmed" in user


def test_bad_options_are_clear_errors_and_the_entry_point_loads():
    from ksdk.errors import KsdkError

    with pytest.raises(KsdkError, match="reply_format"):
        LLMMutator(model="openai/x", reply_format="diff")
    with pytest.raises(KsdkError, match="weights"):
        LLMMutator(model=["a/b", "c/d"], weights=[1.0])
    assert load("mutators", "llm") is LLMMutator


def test_importing_the_mutators_does_not_import_litellm():
    code = "import sys, ksdk.mutators.llm, ksdk.mutators.params; assert 'litellm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_evolution_api_builds_both_mutators_with_their_options():
    from ksdk.errors import KsdkError
    from ksdk.evolution.api import make_mutator

    llm = make_mutator("llm", ["openai/a", "openai/b"], "http://127.0.0.1:9/v1", {"max_concurrency": 3})
    assert isinstance(llm, LLMMutator) and llm.models == ["openai/a", "openai/b"]
    assert llm.api_base == "http://127.0.0.1:9/v1" and llm.max_concurrency == 3
    params = make_mutator("params", [], None, {"explore": 0.2}, random_seed=5)
    assert params.explore == 0.2
    with pytest.raises(KsdkError, match="takes no model"):
        make_mutator("params", ["openai/a"], None, {})


def test_one_mutator_serves_runs_in_two_event_loops():
    # evolve() twice in one notebook with the same mutator: each asyncio.run is a new loop
    mutator = LLMMutator(model="openai/gpt-4o", mock_response=FULL, max_concurrency=1)

    async def two():
        return await asyncio.gather(mutator.propose(request()), mutator.propose(request()))

    for _ in range(2):
        outs = asyncio.run(two())
        assert all(o.candidate is not None for o in outs), [o.error for o in outs]


def test_a_parent_that_mentions_feedback_in_braces_is_shown_verbatim():
    src = PARENT_SRC + 'LOG = "{feedback}"\n'
    req = request()
    req.parent.candidate.source = src
    user = build_messages(req)[-1]["content"]
    assert src.rstrip() in user  # edits must be able to quote the program exactly as it is


def test_without_litellm_the_llm_mutator_says_which_extra_to_install():
    code = ("import sys; sys.modules['litellm'] = None\n"
            "from ksdk.errors import PluginError\nfrom ksdk.mutators.llm import LLMMutator\n"
            "try:\n    LLMMutator(model='openai/x')\nexcept PluginError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "ksdk[llm]"' in out.stdout
