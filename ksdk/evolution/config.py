"""RunConfig: what a run is (task, backend, mutator, budgets, policy), saved as RUN_DIR/run.json."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

from pydantic import Field, ValidationError

from ksdk._version import __version__
from ksdk.archives.selection import SelectionConfig
from ksdk.errors import RunDirError
from ksdk.evolution.budgets import Budgets
from ksdk.evolution.retime import DEFAULT_ROUNDS, DEFAULT_TOP
from ksdk.languages import LanguageField
from ksdk.models import DeviceInfo, Model

RUN_FILE = "run.json"
TASK_FILE = "task.py"
ARCHIVE_FILE = "archive.sqlite"


class RunConfig(Model):
    """Everything needed to start or resume a run; written to RUN_DIR/run.json."""

    task_name: str
    task_path: Optional[str] = Field(None, description="where the task came from (RUN_DIR/task.py is the copy used)")
    backend: str
    evaluator: str = Field("local", description="entry point in ksdk.evaluators")
    evaluator_url: Optional[str] = None
    workers: Optional[int] = Field(None, ge=1, description="evaluation workers (None: one per device)")
    device: Optional[DeviceInfo] = None
    mutator: str
    models: list[str] = Field(default_factory=list, description="LLM models, 'provider/name[:weight]'")
    api_base: Optional[str] = None
    mutator_options: dict[str, Any] = Field(default_factory=dict)
    mutation_concurrency: Optional[int] = Field(None, ge=1, description="mutations in flight (None: workers + 1)")
    inspirations: int = Field(3, ge=0)
    budgets: Budgets = Field(default_factory=Budgets)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    seed_path: Optional[str] = None
    seed_language: Optional[str] = None
    language: Optional[LanguageField] = Field(None, description="the candidate language as the backend declared it "
                                              "(file types, code fences, comments); None in runs before ksdk 0.2")
    random_seed: int = 0
    retime_top: Optional[int] = Field(None, ge=0, description=f"leading candidates re-timed (with the seed) before "
                                      f"the run reports its best; 0: none; None: up to {DEFAULT_TOP}, as "
                                      "ksdk.evolution.retime.plan sizes it")
    retime_rounds: Optional[int] = Field(None, ge=0, description=f"fresh evaluations of each, in turn; 0: none; "
                                         f"None: up to {DEFAULT_ROUNDS}")
    race: bool = Field(True, description="time each candidate only until it is clearly slower than the best so far "
                       "(TimingSettings.race_below); the re-timing of the leaders never races")
    ksdk_version: str = __version__
    started_at: float = Field(default_factory=time.time)
    resumed_at: list[float] = Field(default_factory=list)
    finished: bool = False
    stop_reason: Optional[str] = None

    def save(self, run_dir: Path) -> None:
        """Write run.json atomically (a kill mid-write leaves the previous version)."""
        path = Path(run_dir) / RUN_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, run_dir: Path) -> "RunConfig":
        """Read RUN_DIR/run.json; RunDirError when the folder is not a ksdk run."""
        run_dir = Path(run_dir)
        path = run_dir / RUN_FILE
        if not run_dir.is_dir():
            raise RunDirError(f"run directory not found: {run_dir}")
        if not path.is_file() or not (run_dir / ARCHIVE_FILE).is_file():
            raise RunDirError(f"{run_dir} is not a ksdk run directory (no {RUN_FILE} and {ARCHIVE_FILE}); "
                              "give the --out folder of an earlier `ksdk evolve`")
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (ValueError, ValidationError) as e:
            raise RunDirError(f"{path} is damaged or from an incompatible ksdk: {str(e).splitlines()[0]}") from None
