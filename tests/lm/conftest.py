"""Fixtures of the LM tests: one reference SFT run on the tiny model, shared by the engine, resume and FSDP tests.

Why one run: the engine tests (loss falls, metrics, export), the resume tests (the uninterrupted baseline) and
the FSDP test (the one-process trajectory) all need the same short SFT run; training it once keeps the suite fast.
The settings match ``scripts/train_sft_tiny.py``, so subprocess runs of that script are the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

REFERENCE_CONFIG = {"lr": 2e-3, "epochs": 2, "global_batch_groups": 4, "micro_batch_tokens": 128, "max_length": 128,
                        "warmup_ratio": 0.1, "checkpoint_every": 2, "keep_last": 2, "seed": 0, "weight_decay": 0.01}


@dataclass
class ReferenceRun:
    run_dir: Path
    export: Path
    status: str
    step: int


def train_reference(model_dir: Path, run_dir: Path, should_stop=None, **overrides) -> object:
    from stages.lm.engine import EpochBatches, TrainConfig, Trainer
    from stages.lm.losses.nll import NLLLoss
    from tests.lm.helpers import fixture_groups

    trainer = Trainer(TrainConfig(**{**REFERENCE_CONFIG, **overrides}), model_dir, run_dir)
    data = EpochBatches(fixture_groups(trainer.tokenizer), epochs=2, seed=0, batch_groups=4)
    result = trainer.fit(data, NLLLoss(), should_stop=should_stop)
    if result.status == "completed":
        trainer.export_hf(run_dir / "export")
    trainer.close()
    return result


@pytest.fixture(scope="session")
def reference_run(tiny_model_dir, tmp_path_factory) -> ReferenceRun:
    """12 SFT steps on 24 fixture examples, wandb in offline mode, exported at the end."""
    mp = pytest.MonkeyPatch()
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path_factory.mktemp("reference-sft")
    try:
        result = train_reference(tiny_model_dir, run_dir, wandb_project="lm-tests")
    finally:
        mp.undo()
    return ReferenceRun(run_dir, run_dir / "export", result.status, result.step)
