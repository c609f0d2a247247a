"""Environment for Ray processes started by the tests: toy_py on PYTHONPATH, for them only."""

import os
from contextlib import contextmanager
from pathlib import Path

import toy_backend


@contextmanager
def toy_environment(site: Path, ledger: Path):
    """toy_py on PYTHONPATH (and a ledger) while Ray's processes start: they keep it, this process does not."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "KSDK_TOY_LEDGER")}
    os.environ.update(toy_backend.env_with(site, KSDK_TOY_LEDGER=str(ledger)))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
