"""Checkpoints that resume exactly and appear atomically.

Why: jobs are preempted and requeued; a resumed run must end with the same weights as an uninterrupted one. A
checkpoint therefore holds the model and optimizer state (through ``torch.distributed.checkpoint``, which works
for one process and for FSDP2 shards alike), the trainer state (step, data position) and every rank's RNG states.
It is written into a hidden temporary folder and renamed into place by rank 0 only when complete, so a job killed
mid-write leaves the previous checkpoint as the latest. Only the last ``keep_last`` are kept.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from stages.lm.engine.distributed import DistInfo, barrier

STATE_FILE = "trainer_state.json"
PREFIX = "step-"


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    base = Path(root)
    if not base.is_dir():
        return []
    found = [p for p in base.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest_checkpoint(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np

        state["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover
        pass
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(root: str | Path, step: int, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    trainer_state: dict[str, Any], info: DistInfo, keep_last: int = 2) -> Path:
    """Write checkpoint ``step`` under ``root`` atomically; every rank must call this."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    base = Path(root)
    final = base / checkpoint_name(step)
    tmp = base / f".tmp-{checkpoint_name(step)}"
    if info.is_main:
        base.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    barrier(info)
    model_sd, optim_sd = get_state_dict(module, optimizer)
    with warnings.catch_warnings():  # single-process DCP warns that no process group exists: that is intended
        warnings.filterwarnings("ignore", message=".*torch.distributed is disabled.*")
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(tmp))
    torch.save(rng_state(), tmp / f"rng_rank{info.rank}.pt")
    barrier(info)
    if info.is_main:
        state = {**trainer_state, "step": step, "world_size": info.world_size}
        with (tmp / STATE_FILE).open("w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=1, default=float)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if final.exists():  # rewriting the same step (e.g. preempted right after a periodic save)
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(base)
        for old in list_checkpoints(base)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    barrier(info)
    return final


def load_checkpoint(path: str | Path, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    info: DistInfo) -> dict[str, Any]:
    """Restore model, optimizer and this rank's RNG from ``path``; return the trainer state."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    folder = Path(path)
    state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    if state.get("world_size", 1) != info.world_size:
        # Model and optimizer shards reshard fine through DCP; only the per-rank RNG streams cannot carry over.
        rng_file = folder / "rng_rank0.pt"
    else:
        rng_file = folder / f"rng_rank{info.rank}.pt"
    model_sd, optim_sd = get_state_dict(module, optimizer)
    holder = {"model": model_sd, "optim": optim_sd}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.distributed is disabled.*")
        dcp.load(holder, checkpoint_id=str(folder))
    set_state_dict(module, optimizer, model_state_dict=holder["model"], optim_state_dict=holder["optim"])
    set_rng_state(torch.load(rng_file, weights_only=False))
    return state
