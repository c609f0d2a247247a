"""Process helpers for tests that check nothing a candidate started survives (Linux /proc)."""

import os
from typing import Optional


def state(pid: int) -> Optional[str]:
    """The process's state letter ('R', 'S', 'Z', ...), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def running(marker: str) -> list[int]:
    """Pids of live processes whose command line contains `marker` (a sandboxed process has no pid we know)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd and state(int(entry)) not in ("Z", "X", None):
            pids.append(int(entry))
    return pids
