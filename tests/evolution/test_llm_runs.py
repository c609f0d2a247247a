"""`ksdk evolve --mutator llm` against a local OpenAI-compatible server (ksdk.testing.scripted_llm) as a user runs
it: a server that needs no key, a rejected key, a key that must never be stored, replies that never work."""

import json

from ksdk.cli.main import main
from ksdk.testing.scripted_llm import ScriptedLLM, ScriptedReply

GOOD = "```numpy\ndef kernel(x):\n    y = x * 2.0\n    return y + 1.0\n```\n"


def evolve(task, out, llm, *extra):
    return main(["evolve", str(task), "--backend", "numpy_cpu", "--mutator", "llm", "--model", "openai/scripted",
                 "--api-base", llm.url, "--max-candidates", "2", "--out", str(out), "-q", *extra])


def test_a_rejected_key_ends_the_run_at_once_with_the_fix_and_the_same_command_runs_again(
        numpy_backend, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KSDK_API_KEY", raising=False)
    with ScriptedLLM([ScriptedReply.error(401, "Incorrect API key provided")] + [GOOD] * 5) as llm:
        code = evolve(numpy_backend, tmp_path / "run", llm, "--api-key", "sk-wrong")
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(llm.requests) == 1  # not retried, nothing more asked
        assert err[-1].startswith("ksdk: error: llm mutator: openai/scripted at http://127.0.0.1:")
        assert "rejected the API key (Incorrect API key provided): pass --api-key KEY or set KSDK_API_KEY" in err[-1]
        assert sum("rejected the API key" in line for line in err) == 1  # said once
        config = json.loads((tmp_path / "run" / "run.json").read_text())
        assert config["finished"] is False and "rejected the API key" in config["stop_reason"]
        # the run made nothing beyond its seed: the same command starts it again (the server takes the key now)
        assert evolve(numpy_backend, tmp_path / "run", llm, "--api-key", "sk-wrong") == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["finished"] is True
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    capsys.readouterr()
    with ScriptedLLM([GOOD] * 3) as llm:  # a folder that holds anything else is never cleared
        assert evolve(numpy_backend, tmp_path / "other", llm) == 2
        assert evolve(numpy_backend, tmp_path / "run", llm) == 2  # nor a run that made candidates
    err = capsys.readouterr().err
    assert "other exists and is not empty" in err and "already holds a run" in err


def test_a_dead_api_base_is_named_with_the_fix_before_the_run_folder_is_made(numpy_backend, tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    code = main(["evolve", str(numpy_backend), "--backend", "numpy_cpu", "--mutator", "llm", "--model",
                 "openai/local", "--api-base", url, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not (tmp_path / "run").exists()
    assert err[0].startswith(f"ksdk: error: cannot reach the LLM server at {url} (")
    assert "start the server (vLLM: `vllm serve MODEL`; Ollama: `ollama serve`" in err[0] and "--api-base" in err[0]


def test_a_missing_key_is_found_before_the_run_folder_once_in_one_line(numpy_backend, tmp_path, capsys,
                                                                        monkeypatch):
    for var in ("KSDK_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    code = main(["evolve", str(numpy_backend), "--backend", "numpy_cpu", "--mutator", "llm", "--model",
                 "openai/gpt-4o-mini", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not (tmp_path / "run").exists()
    assert err == ["ksdk: error: no API key for openai/gpt-4o-mini: pass --api-key KEY or set KSDK_API_KEY (or "
                   "OPENAI_API_KEY); a local server that needs none: --api-base URL"]


def test_a_hosted_provider_refusing_the_key_is_found_by_a_one_token_request(numpy_backend, tmp_path, capsys,
                                                                            monkeypatch):
    monkeypatch.delenv("KSDK_API_KEY", raising=False)
    with ScriptedLLM([ScriptedReply.error(401, "Incorrect API key provided")]) as llm:
        monkeypatch.setenv("OPENAI_BASE_URL", llm.url)  # the "hosted" provider, as litellm finds it
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
        code = main(["evolve", str(numpy_backend), "--backend", "numpy_cpu", "--mutator", "llm", "--model",
                     "openai/scripted", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not (tmp_path / "run").exists()
    assert "rejected the API key (Incorrect API key provided)" in err[0]
    assert [r.get("max_tokens") for r in llm.requests] == [1]


def test_a_server_refusing_the_key_on_its_model_list_is_named():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    from ksdk.mutators.llm_check import probe_server

    class Refuse(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"error": {"message": "invalid token"}}'
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        why = probe_server(url, "sk-bad")
    finally:
        server.shutdown()
        server.server_close()
    assert why == (f"the LLM server at {url} refused the API key (HTTP 401: invalid token): pass --api-key KEY or "
                   "set KSDK_API_KEY with a key it accepts")


def test_the_api_key_reaches_the_server_and_is_never_stored(numpy_backend, tmp_path, capsys):
    with ScriptedLLM([GOOD] * 3) as llm:
        assert evolve(numpy_backend, tmp_path / "run", llm, "--api-key", "sk-very-secret") == 0
    assert llm.keys and set(llm.keys) == {"sk-very-secret"}
    for f in (tmp_path / "run").iterdir():
        assert b"sk-very-secret" not in f.read_bytes(), f
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("done (max candidates (2) evaluated): 2 candidates, 2 valid")
    assert all(line.startswith("warning: the machine was busy") for line in err[1:])  # as it may be, under test


def test_a_run_where_no_mutation_succeeds_exits_non_zero(numpy_backend, tmp_path, capsys):
    with ScriptedLLM(lambda body: "Sorry, I cannot help with that.") as llm:
        code = evolve(numpy_backend, tmp_path / "run", llm)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(llm.requests) == 50
    assert err[-1].startswith("ksdk: error: no mutation succeeded in 50 attempt(s) (last: unusable reply from "
                              "openai/scripted: the reply holds no numpy program")
