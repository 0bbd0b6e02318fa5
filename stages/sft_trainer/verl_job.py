"""The run folder layout and run-time choices of a verl SFT job, gathered into a ``VerlJob``.

Why separate from the overrides: preflight builds the same job (to compose its overrides) before the run folder
exists, and the run builds it again with the GPU count it actually got and the attention kernel it can use.

Layout under the run folder: ``data/{train,val}.parquet`` (the chosen rows), ``checkpoints/`` (verl's
``default_local_dir``: ``global_step_N/`` and ``latest_checkpointed_iteration.txt``), ``logs/`` (torchrun output,
verl's per-attempt metrics file, Hydra's record), ``model/`` (the merged Hugging Face folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.sft_trainer import plan
from stages.sft_trainer.prepare import Prepared
from stages.sft_trainer.verl_overrides import VerlJob


def make_job(spec: Any, inputs: dict[str, Any], prepared: Prepared, out_dir: Path, attn_implementation: str,
             run_id: str = "sft") -> VerlJob:
    params = spec.params
    data = out_dir / "data"
    return VerlJob(
        model_dir=Path(inputs["model"].path),
        train_file=data / "train.parquet",
        val_file=data / "val.parquet" if prepared.selection.val else None,
        checkpoint_dir=out_dir / "checkpoints",
        world=prepared.world,
        total_steps=prepared.total_steps,
        epochs=prepared.epochs,
        save_freq=plan.save_frequency(params.save_every_steps, prepared.steps_per_epoch, prepared.total_steps),
        run_id=run_id,
        project=spec.runtime.tracking.project,
        seed=spec.runtime.seed,
        thinking=spec.runtime.thinking,
        wandb=spec.runtime.tracking.wandb,
        attn_implementation=attn_implementation,
    )
