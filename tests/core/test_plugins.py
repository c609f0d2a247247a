"""Plugins come from entry points alone; broken ones are listed with their error and never hide the rest."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ksdk.errors import PluginError
from ksdk.registry import discover, load
from ksdk.testing.plugins import plugin_site

PLUGIN_SRC = textwrap.dedent('''
    from ksdk.interfaces.backend import Backend
    from ksdk.models import Availability

    class ToyBackend(Backend):
        name = "toy"
        language = "toy"

        @classmethod
        def probe(cls):
            return Availability(name="toy", available=False, reason="toy has no device", fix="none needed")

        def runner(self, ctx):
            raise RuntimeError("never called")

    class NotABackend:
        pass
''')


def make_dist(tmp_path: Path, backends: dict[str, str]) -> Path:
    """A throwaway distribution: a module plus .dist-info metadata, found through PYTHONPATH like any install."""
    return plugin_site(tmp_path / "site", "toyplugin", "9.9",
                       {"toyplugin": PLUGIN_SRC,
                        "raising_plugin": "raise ImportError('needs libfoo: pip install foo')\n"},
                       {"ksdk.backends": backends})


def run_cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.run([sys.executable, "-m", "ksdk", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_in_tree_backends_listed_unavailable_with_reason():
    rows = {r["name"]: r for r in json.loads(run_cli(Path("/nonexistent"), "backends", "--json").stdout)}
    for name in ("triton_nvidia", "maca_metax"):
        assert name in rows
        if not rows[name]["available"]:
            assert rows[name]["reason"] and rows[name]["fix"]
    assert "MACA" in rows["maca_metax"]["reason"]


def test_third_party_entry_point_appears_with_no_change_to_ksdk(tmp_path):
    site = make_dist(tmp_path, {"toy": "toyplugin:ToyBackend"})
    out = run_cli(site, "backends", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["toy"]["distribution"] == "toyplugin" and rows["toy"]["version"] == "9.9"
    assert rows["toy"]["reason"] == "toy has no device"
    table = run_cli(site, "backends")
    assert "toy" in table.stdout and "toyplugin" in table.stdout


def test_broken_plugins_are_listed_and_do_not_break_others(tmp_path):
    site = make_dist(tmp_path, {"toy": "toyplugin:ToyBackend", "boom": "raising_plugin:X",
                               "notone": "toyplugin:NotABackend"})
    out = run_cli(site, "backends", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert "needs libfoo" in rows["boom"]["reason"]
    assert "not a subclass of ksdk Backend" in rows["notone"]["reason"]
    assert rows["toy"]["reason"] == "toy has no device"
    assert "triton_nvidia" in rows


def test_bad_plugins_give_one_line_errors_naming_the_plugin(tmp_path):
    site = make_dist(tmp_path, {"boom": "raising_plugin:X", "notone": "toyplugin:NotABackend"})
    task = tmp_path / "t.py"
    task.write_text("class Model: pass\ndef get_inputs(): return []\ndef get_init_inputs(): return []\n")
    for name, words in (("boom", "needs libfoo"), ("notone", "not a subclass"), ("nope", "unknown backend 'nope'")):
        out = run_cli(site, "eval", str(task), str(task), "--backend", name)
        assert out.returncode == 2
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1, out.stderr
        assert name in lines[0] and words in lines[0]
        assert "Traceback" not in out.stderr


def test_registry_api_errors():
    with pytest.raises(PluginError, match="unknown backend 'nope'"):
        load("backends", "nope")
    names = {e.name for e in discover("backends")}
    assert {"triton_nvidia", "maca_metax"} <= names


def test_version_and_help():
    out = run_cli(Path("/nonexistent"), "--version")
    assert out.returncode == 0 and out.stdout.startswith("ksdk ")
