"""SFT on the native engine (``stages.lm``): token NLL on the final assistant turn, the same rows and step count as
the verl engine, then validation loss and export to a Hugging Face folder.

Why a plain function of a JSON-able job: it runs in the stage's own process for one GPU or a CPU, and on every rank
under torchrun (``native_worker``) for several GPUs, with the same code. Resuming is the engine's: ``fit`` loads
the newest ``checkpoints/step-*`` of the run folder and restores the data position, so a requeued attempt continues
where the previous one checkpointed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class NativeJob:
    model_dir: str
    run_dir: str
    train_file: str
    val_file: str | None
    config: dict[str, Any]  # stages.lm.engine.TrainConfig fields
    total_steps: int
    thinking: bool = False
    truncate: bool = False  # cut rows over max_length at the end (truncation=right)
    run_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> NativeJob:
        return cls(**json.loads(text))


def read_messages(path: str) -> list[list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=["messages"]).column("messages").to_pylist()


def encode_groups(path: str, tokenizer: Any, thinking: bool, max_length: int, truncate: bool) -> list[list[Any]]:
    """One group (one sample) per row, tokenized by the project's chat format; rows cut at ``max_length``."""
    from stages.lm.chat import ChatFormat
    from stages.lm.engine import Sample

    fmt = ChatFormat(thinking=thinking)
    groups = []
    for conv in read_messages(path):
        enc = fmt.encode(tokenizer, conv)
        ids, mask = list(enc.input_ids), list(enc.assistant_mask)
        if truncate and len(ids) > max_length:
            ids, mask = ids[:max_length], mask[:max_length]
        groups.append([Sample(ids, mask)])
    return groups


def validation_loss(trainer: Any, groups: list[list[Any]]) -> float:
    """Token-mean NLL of the trained tokens over ``groups``, every rank scoring its share."""
    from stages.lm.engine.distributed import all_reduce

    info = trainer.info
    mine = groups[info.rank::info.world_size]
    total, count = 0.0, 0.0
    if mine:
        for group, scored in zip(mine, trainer.logprobs(mine)):
            for sample, logp in zip(group, scored):
                for keep, lp in zip(sample.loss_mask, logp):
                    if keep:
                        total -= lp
                        count += 1
    else:  # keep the collective calls in step with the other ranks
        trainer.logprobs(groups[:1])
    total, count = all_reduce(total, info), all_reduce(count, info)
    return total / count if count else math.nan


def add_val_loss(metrics_path: Path, step: int, val_loss: float) -> None:
    """Put ``val_loss`` into the record of ``step`` (one record per step, as the verl engine writes them)."""
    lines = metrics_path.read_text(encoding="utf-8").splitlines() if metrics_path.exists() else []
    records = [json.loads(x) for x in lines if x.strip()]
    for rec in reversed(records):
        if rec.get("step") == step:
            rec["val_loss"] = val_loss
            break
    else:
        records.append({"step": step, "val_loss": val_loss})
    tmp = metrics_path.with_name(f".{metrics_path.name}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    tmp.replace(metrics_path)


def train(job: NativeJob, should_stop: Callable[[int], bool] | None = None) -> dict[str, Any]:
    """Run (or resume) the job; returns ``status`` (completed | preempted), ``step``, ``checkpoint``, ``val_loss``."""
    from stages.lm.engine import EpochBatches, TrainConfig, Trainer
    from stages.lm.engine.distributed import destroy
    from stages.lm.losses.nll import NLLLoss

    config = TrainConfig.from_dict(job.config)
    run_dir = Path(job.run_dir)
    trainer = Trainer(config, job.model_dir, run_dir, total_steps=job.total_steps, run_name=job.run_name)
    try:
        groups = encode_groups(job.train_file, trainer.tokenizer, job.thinking, config.max_length, job.truncate)
        data = EpochBatches(groups, epochs=config.epochs, seed=config.seed, batch_groups=config.global_batch_groups)
        stop = (lambda: should_stop(trainer.step)) if should_stop else None
        result = trainer.fit(data, NLLLoss(), should_stop=stop)
        out: dict[str, Any] = {"status": result.status, "step": result.step,
                               "checkpoint": str(result.checkpoint) if result.checkpoint else None, "val_loss": None}
        if result.status != "completed":
            return out
        if job.val_file:
            val = encode_groups(job.val_file, trainer.tokenizer, job.thinking, config.max_length, job.truncate)
            out["val_loss"] = validation_loss(trainer, val)
            if trainer.info.is_main:
                add_val_loss(run_dir / "metrics.jsonl", trainer.step, out["val_loss"])
        trainer.export_hf(run_dir / "model")
        return out
    finally:
        trainer.close()
        destroy(trainer.info)
