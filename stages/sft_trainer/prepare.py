"""From a manifest and its inputs to the run's plan: the rows, the split, the world and the step counts.

Why one function for preflight and run: every check that can fail because of the user's input (bad rows, lengths,
a batch that does not divide across the GPUs, too few rows for one step) happens here, so ``preflight`` finds it
before anything is written and ``run`` finds the same thing again with the GPU count the job actually got. The
chosen rows are then written as ``data/train.parquet`` (and ``data/val.parquet``) in the run folder: both engines
read those, and a requeued attempt rewrites them identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.core.errors import InputError
from stages.sft_trainer import plan
from stages.sft_trainer.data import Conversation, load_tokenizer, read_conversations, token_lengths
from stages.sft_trainer.params import SFTParams
from stages.sft_trainer.selection import Selection, select

BATCH = "$.spec.params.global_batch_size"


@dataclass(frozen=True)
class Prepared:
    rows: list[Conversation]
    selection: Selection
    world: plan.World
    steps_per_epoch: int
    total_steps: int

    @property
    def epochs(self) -> int:
        """Whole epochs the engines must be allowed to run."""
        return plan.epochs_needed(self.total_steps, self.steps_per_epoch)


def requested_world(resources: Any) -> plan.World:
    """The world the manifest asks for: GPUs per node, or one gloo rank per node on a CPU-only request."""
    gpus = int(resources.gpus_per_node)
    return plan.World(nodes=int(resources.nodes), ranks_per_node=max(1, gpus), cpu=gpus == 0)


def detected_world(resources: Any) -> plan.World:
    """The world this job actually has: the visible GPUs, or CPU ranks as the manifest asks when there is none."""
    import torch

    if torch.cuda.is_available():
        return plan.World(nodes=int(resources.nodes), ranks_per_node=torch.cuda.device_count(), cpu=False)
    return plan.World(nodes=int(resources.nodes), ranks_per_node=max(1, int(resources.gpus_per_node)), cpu=True)


def check_batch(params: SFTParams, world: plan.World) -> None:
    if params.global_batch_size % world.size:
        where = f"{world.nodes} node(s) x {world.ranks_per_node} {'rank' if world.cpu else 'GPU'}(s)"
        raise InputError(
            f"global_batch_size {params.global_batch_size} does not divide across {world.size} data-parallel ranks "
            f"({where}): use a multiple of {world.size}",
            BATCH,
        )


def analyse(spec: Any, inputs: dict[str, Any], world: plan.World) -> Prepared:
    """Read and check the data and the batch arithmetic; ``InputError`` for anything the user must fix."""
    params: SFTParams = spec.params
    check_batch(params, world)
    rows = read_conversations(inputs["data"].path)
    tokenizer = load_tokenizer(inputs["model"].path)
    lengths = token_lengths(rows, tokenizer, thinking=spec.runtime.thinking)
    chosen = select(lengths, params.max_length, params.truncation, params.val_fraction, spec.runtime.seed)
    per_epoch = plan.steps_per_epoch(len(chosen.train), params.global_batch_size, world.size)
    if per_epoch < 1:
        raise InputError(
            f"only {len(chosen.train)} training rows for a global batch of {params.global_batch_size} on "
            f"{world.size} rank(s): not one full step; lower global_batch_size or add data",
            BATCH,
        )
    if chosen.val and plan.steps_per_epoch(len(chosen.val), params.global_batch_size, world.size) < 1:
        raise InputError(
            f"the validation split holds {len(chosen.val)} rows, fewer than one global batch "
            f"({params.global_batch_size}); verl validates in whole batches: raise val_fraction or set it to 0",
            "$.spec.params.val_fraction",
        )
    total = plan.total_steps(per_epoch, params.epochs, params.max_steps)
    return Prepared(rows=rows, selection=chosen, world=world, steps_per_epoch=per_epoch, total_steps=total)


def write_split(prepared: Prepared, dest: Path) -> tuple[Path, Path | None]:
    """``dest/train.parquet`` and, with a validation split, ``dest/val.parquet``: ``messages`` and the index of
    each row in the input (``source_row``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dest.mkdir(parents=True, exist_ok=True)

    def write(indices: list[int], name: str) -> Path:
        path = dest / name
        tmp = dest / f".{name}.tmp"
        table = pa.table({"messages": [prepared.rows[i] for i in indices], "source_row": indices})
        pq.write_table(table, tmp)
        tmp.replace(path)
        return path

    train = write(prepared.selection.train, "train.parquet")
    val = write(prepared.selection.val, "val.parquet") if prepared.selection.val else None
    return train, val
