"""The hostile-candidate suite: every guarantee in docs/architecture.md's threat model, played by an attacker."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
