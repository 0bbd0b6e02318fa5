"""Training metrics: always a JSONL file, wandb when configured, a progress bar on a terminal.

Why: the JSONL file is the project's own record (tests and the analyzer read it; nobody parses wandb's binary
files). wandb is optional and offline by default, because compute nodes have no internet; offline runs can be
synced later. Only rank 0 writes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Append one JSON object per logged step to ``path``; mirror to wandb and a tqdm bar if asked."""

    def __init__(self, path: str | Path, *, enabled: bool = True, total_steps: int | None = None,
                 wandb_project: str | None = None, wandb_mode: str = "offline", run_name: str | None = None,
                 config: dict[str, Any] | None = None, progress: bool | None = None) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._wandb: Any = None
        self._bar: Any = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if wandb_project and wandb_mode != "disabled":
            import wandb

            os.environ.setdefault("WANDB_MODE", wandb_mode)
            self._wandb = wandb.init(project=wandb_project, name=run_name, config=config or {},
                                     mode=os.environ["WANDB_MODE"], dir=str(self.path.parent), reinit=True)
        if progress is None:
            progress = sys.stderr.isatty()
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total_steps, desc="train", unit="step", dynamic_ncols=True)

    def log(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **values}
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=float) + "\n")
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in values.items() if isinstance(v, (int, float))}, step=step)
        if self._bar is not None:
            self._bar.n = step
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in values.items() if k in ("loss", "lr")}, refresh=False)
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics JSONL file (a resumed run appends; later records win per step)."""
    records: dict[int, dict[str, Any]] = {}
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                records[rec["step"]] = rec
    return [records[k] for k in sorted(records)]
