"""`ksdk evolve --mutator llm` against a local OpenAI-compatible server (ksdk.testing.scripted_llm) as a user runs
it: a server that needs no key, a rejected key, a key that must never be stored, replies that never work."""

import json

from ksdk.cli.main import main
from ksdk.testing.scripted_llm import ScriptedLLM, ScriptedReply

GOOD = "```numpy\ndef kernel(x):\n    y = x * 2.0\n    return y + 1.0\n```\n"


def evolve(task, out, llm, *extra):
    return main(["evolve", str(task), "--backend", "numpy_cpu", "--mutator", "llm", "--model", "openai/scripted",
                 "--api-base", llm.url, "--max-candidates", "2", "--out", str(out), "-q", *extra])


def test_a_rejected_key_ends_the_run_at_once_with_the_fix(numpy_backend, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KSDK_API_KEY", raising=False)
    with ScriptedLLM([ScriptedReply.error(401, "Incorrect API key provided")] + [GOOD] * 5) as llm:
        code = evolve(numpy_backend, tmp_path / "run", llm, "--api-key", "sk-wrong")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(llm.requests) == 1  # not retried, nothing more asked
    assert err[-1].startswith("ksdk: error: llm mutator: openai/scripted at http://127.0.0.1:")
    assert "rejected the API key (Incorrect API key provided): pass --api-key KEY or set KSDK_API_KEY" in err[-1]
    config = json.loads((tmp_path / "run" / "run.json").read_text())
    assert config["finished"] is False and "rejected the API key" in config["stop_reason"]


def test_the_api_key_reaches_the_server_and_is_never_stored(numpy_backend, tmp_path, capsys):
    with ScriptedLLM([GOOD] * 3) as llm:
        assert evolve(numpy_backend, tmp_path / "run", llm, "--api-key", "sk-very-secret") == 0
    assert llm.keys and set(llm.keys) == {"sk-very-secret"}
    for f in (tmp_path / "run").iterdir():
        assert b"sk-very-secret" not in f.read_bytes(), f
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("done (max candidates (2) evaluated): 2 candidates, 2 valid")


def test_a_run_where_no_mutation_succeeds_exits_non_zero(numpy_backend, tmp_path, capsys):
    with ScriptedLLM(lambda body: "Sorry, I cannot help with that.") as llm:
        code = evolve(numpy_backend, tmp_path / "run", llm)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(llm.requests) == 50
    assert err[-1].startswith("ksdk: error: no mutation succeeded in 50 attempt(s) (last: unusable reply from "
                              "openai/scripted: the reply holds no numpy program")
