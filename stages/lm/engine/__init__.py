"""The native training engine (see ``trainer.py`` for the shape of a training run).

Why lazy exports: ``TrainConfig`` is light and used by manifests and ``--help``; the trainer pulls in torch and
transformers, so it is imported only when a name from it is asked for.

How a stage uses it (the loss and the groups are the stage's own)::

    trainer = Trainer(TrainConfig(lr=1e-5, ...), model_dir, run_dir, total_steps=n, reference=needs_ref)
    trainer.resume()                                    # or fit(...), which resumes by itself
    while trainer.step < n and not stop():
        groups = build_groups()                         # list of groups of Sample (a pair for DPO / pi-Distill)
        for group, lps in zip(groups, trainer.logprobs(groups, reference=True)):
            ...                                         # attach per-token fields the loss needs
        trainer.train_step(groups, GRPOLoss())          # one optimizer step; metrics go to run_dir/metrics.jsonl
        if trainer.step % every == 0:
            trainer.save_checkpoint()
    trainer.save_checkpoint(); trainer.export_hf(out_dir); trainer.close()
"""

from __future__ import annotations

from typing import Any

from stages.lm.engine.config import TrainConfig, TrainConfigError

_LAZY = {
    "Trainer": "stages.lm.engine.trainer",
    "FitResult": "stages.lm.engine.trainer",
    "Sample": "stages.lm.engine.batch",
    "EpochBatches": "stages.lm.engine.data",
    "PackedBatch": "stages.lm.engine.packing",
    "read_metrics": "stages.lm.engine.metrics",
}

__all__ = ["EpochBatches", "FitResult", "PackedBatch", "Sample", "TrainConfig", "TrainConfigError", "Trainer", "read_metrics"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
