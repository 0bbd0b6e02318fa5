"""The reference and training phases of one iteration, on the shared native engine (``stages.lm.engine``), in one
process or on every rank under torchrun (FSDP2).

Reference model: the model at the start of iteration t. Its log-probabilities of both sides of every training pair
are computed **once**, in the ``score`` phase, and stored (``pairs/iter-<t>.reference.jsonl``), rather than kept as
a frozen copy next to the policy. Why: (1) memory: no second copy of the weights beside the policy and its
optimizer state on the GPU; (2) compute: one forward pass per pair per iteration instead of one per pair per epoch;
(3) exact resume: a requeued job reads the very numbers the first attempt used, whatever happened in between. The
numbers come from the trainer's own no-grad forward pass (the same packed, sharded model the policy is) *before*
the first optimizer step, so at step 0 policy and reference agree and the first loss is log 2. The previous
iteration's pairs, trained again in iteration t, are rescored under the iteration-t reference, as the paper's
trainer does. Under torchrun each rank scores every world_size-th pair of a chunk; rank 0 gathers them in order,
writes the chunk and moves the state on.

Training: a fresh optimizer and learning-rate schedule per iteration (each SPIN iteration is one DPO run), the
pairs shuffled per epoch from (seed, iteration), ``global_batch_size`` pairs per optimizer step, split over the
ranks by the engine. The engine checkpoints every ``save_every_steps`` steps, at least every
``runtime.checkpoint_every_minutes``, and on a stop signal (its ``should_stop`` hook is polled between optimizer
steps and agreed over the ranks); ``fit`` resumes from the newest checkpoint.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any

from stages.lm.engine.trainer import Trainer
from stages.spin import stop_points
from stages.spin.generate import pairs_path
from stages.spin.pairs import EncodedPrompt, pair_group, response_logprob_sums
from stages.spin.session import Session, Stopped
from stages.spin.state import ChunkLog, SpinState, read_jsonl


def reference_path(out: Path, iteration: int) -> Path:
    return out / "pairs" / f"iter-{iteration}.reference.jsonl"


def iteration_seed(seed: int, iteration: int) -> int:
    return int.from_bytes(hashlib.sha256(f"spin:train:{seed}:{iteration}".encode()).digest()[:4], "little")


def train_config(s: Session, iteration: int) -> Any:
    from stages.lm.engine.config import TrainConfig, shared_settings

    p = s.params
    return TrainConfig(
        **shared_settings(p.optim, p.precision, p.lora),
        epochs=max(1, math.ceil(p.epochs_per_iteration)), global_batch_groups=p.global_batch_size,
        micro_batch_tokens=p.micro_batch_tokens, max_length=p.max_length,
        seed=iteration_seed(s.job.seed, iteration), checkpoint_every=p.save_every_steps,
        keep_last=p.keep_checkpoints, log_every=1, grad_sync=p.native.grad_sync,
        optimizer_offload=p.native.optimizer_offload,
        wandb_project=s.job.wandb_project, wandb_mode=s.job.wandb_mode,
    )


def make_trainer(s: Session, state: SpinState, total_steps: int, tokenizer: Any) -> Trainer:
    """The engine's trainer with its checkpoints under the stage's ``checkpoints/iter-<t>``."""
    t = state.iteration
    return Trainer(train_config(s, t), state.start_model, s.out / "work" / f"iter-{t}", total_steps=total_steps,
                   run_name=f"{s.job.run_id}.iter{t}", checkpoint_root=s.checkpoint_dir / f"iter-{t}",
                   tokenizer=tokenizer)


def training_records(out: Path, iteration: int, keep_previous: bool) -> list[dict[str, Any]]:
    """The kept pairs trained in ``iteration``: the previous iteration's (when asked), then this one's."""
    sources = [iteration - 1, iteration] if keep_previous and iteration > 0 else [iteration]
    return [r for s in sources for r in read_jsonl(pairs_path(out, s)) if r["kept"]]


def total_steps(num_pairs: int, batch: int, epochs: float) -> int:
    return max(1, math.ceil(epochs * math.ceil(num_pairs / batch)))


def score_groups(trainer: Trainer, groups: list[list[Any]]) -> list[list[float]]:
    """Response log-prob sums of every group, in order; under torchrun each rank scores every world_size-th."""
    info = trainer.info
    if not info.distributed:
        return response_logprob_sums(trainer.logprobs(groups), groups)
    import torch.distributed as dist

    mine = groups[info.rank::info.world_size]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, response_logprob_sums(trainer.logprobs(mine), mine))
    return [gathered[i % info.world_size][i // info.world_size] for i in range(len(groups))]


def run_scoring(s: Session, state: SpinState, state_path: Path, trainer: Trainer,
                records: list[dict[str, Any]], encoded: dict[int, EncodedPrompt]) -> None:
    """Reference log-prob sums of every training pair under the start-of-iteration model, chunk by chunk."""
    from stages.lm.engine.distributed import barrier

    t, size, info = state.iteration, s.params.generation_batch_size, trainer.info
    path = reference_path(s.out, t)
    chunks = [records[i:i + size] for i in range(0, len(records), size)]
    log = ChunkLog(path, state.bytes) if info.is_main else None
    try:
        for c in range(state.chunk, len(chunks)):
            if s.agreed_stop(info):
                raise Stopped(str(state_path))
            sums = score_groups(trainer, [_group(encoded, r) for r in chunks[c]])
            state.chunk = c + 1
            if log is not None:
                state.bytes = log.append([
                    {"source_iteration": r["iteration"], "position": r["position"], "ref_logp_chosen": a,
                     "ref_logp_rejected": b} for r, (a, b) in zip(chunks[c], sums)
                ])
                state.save(state_path)
            s.report(state.progress(s.params.iterations, state.chunk / len(chunks)),
                     f"iteration {t}: reference log-probs {state.chunk}/{len(chunks)}")
            stop_points.reached(f"score:{t}:{c}")
    finally:
        if log is not None:
            log.close()
    barrier(info)  # every rank reads the file rank 0 wrote
    refs = read_jsonl(path)
    gaps = [r["ref_logp_chosen"] - r["ref_logp_rejected"] for r in refs]
    state.iteration_stats(t)["reference"] = {
        "training_pairs": len(refs), "start_logp_gap_mean": sum(gaps) / len(gaps) if gaps else None,
    }


def _group(encoded: dict[int, EncodedPrompt], record: dict[str, Any], ref: dict[str, Any] | None = None) -> list:
    e = encoded[record["position"]]
    if ref is None:
        return pair_group(e.prompt_ids, e.chosen_ids, record["rejected_token_ids"])
    if (ref["source_iteration"], ref["position"]) != (record["iteration"], record["position"]):
        raise RuntimeError(f"reference record {ref} does not belong to pair "
                           f"({record['iteration']}, {record['position']}): the pairs files were changed")
    return pair_group(e.prompt_ids, e.chosen_ids, record["rejected_token_ids"], ref["ref_logp_chosen"],
                      ref["ref_logp_rejected"])


def run_training(s: Session, state: SpinState, trainer: Trainer, records: list[dict[str, Any]],
                 encoded: dict[int, EncodedPrompt]) -> None:
    """Train on the iteration's pairs to the end (resuming from the newest checkpoint) or raise ``Stopped``."""
    from stages.lm.engine.data import EpochBatches
    from stages.spin.loss import SPINLoss

    p, iteration = s.params, state.iteration
    refs = read_jsonl(reference_path(s.out, iteration))
    if len(refs) != len(records):
        raise RuntimeError(f"iteration {iteration}: {len(refs)} reference records for {len(records)} pairs")
    groups = [_group(encoded, r, ref) for r, ref in zip(records, refs)]
    data = EpochBatches(groups, epochs=trainer.config.epochs, seed=trainer.config.seed,
                        batch_groups=p.global_batch_size)
    loss = SPINLoss(beta=p.beta, loss_type=p.loss)
    trainer.resume(data)  # the newest checkpoint of this iteration, if any (weights, optimizer, data position)
    clock = {"saved": time.monotonic(), "hooked": trainer.step}

    def should_stop() -> bool:  # the engine agrees on it over the ranks
        if trainer.step > clock["hooked"]:
            clock["hooked"] = trainer.step
            s.report(state.progress(p.iterations, trainer.step / trainer.total_steps),
                     f"iteration {iteration}: step {trainer.step}/{trainer.total_steps}")
            stop_points.reached(f"train:{iteration}:{trainer.step}")
        return s.requested() or time.monotonic() - clock["saved"] > s.job.checkpoint_every_s

    while True:
        result = trainer.fit(data, loss, should_stop=should_stop, resume=False)
        if result.checkpoint is not None:
            s.note_checkpoint(str(result.checkpoint))
        if result.status == "completed":
            return
        if s.agreed_stop(trainer.info):
            raise Stopped(str(result.checkpoint))
        clock["saved"] = time.monotonic()  # a timed checkpoint was written: carry on from memory
