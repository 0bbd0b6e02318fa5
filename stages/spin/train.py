"""The reference and training phases of one iteration, on the shared native engine (``stages.lm.engine``).

Reference model: the model at the start of iteration t. Its log-probabilities of both sides of every training pair
are computed **once**, in the ``score`` phase, and stored (``pairs/iter-<t>.reference.jsonl``), rather than kept as
a frozen copy next to the policy. Why: (1) memory: no second copy of the weights beside the policy and its
optimizer state on the GPU; (2) compute: one forward pass per pair per iteration instead of one per pair per epoch;
(3) exact resume: a requeued job reads the very numbers the first attempt used, whatever happened in between. The
numbers come from the trainer's own forward pass (the same packed path the policy uses) *before* the first
optimizer step, so at step 0 policy and reference agree and the first loss is log 2. The previous iteration's
pairs, trained again in iteration t, are rescored under the iteration-t reference, as the paper's trainer does.

Training: a fresh optimizer and learning-rate schedule per iteration (each SPIN iteration is one DPO run), the
pairs shuffled per epoch from (seed, iteration), ``global_batch_size`` pairs per optimizer step. The engine
checkpoints every ``save_every_steps`` steps, at least every ``runtime.checkpoint_every_minutes``, and on a stop
signal (its ``should_stop`` hook is polled between optimizer steps); ``fit`` resumes from the newest checkpoint.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any

from stages.core import RunContext
from stages.lm.engine.trainer import Trainer
from stages.spin import stop_points
from stages.spin.generate import pairs_path
from stages.spin.pairs import EncodedPrompt, pair_group, response_logprob_sums
from stages.spin.state import ChunkLog, SpinState, read_jsonl


def reference_path(out: Path, iteration: int) -> Path:
    return out / "pairs" / f"iter-{iteration}.reference.jsonl"


def iteration_seed(seed: int, iteration: int) -> int:
    return int.from_bytes(hashlib.sha256(f"spin:train:{seed}:{iteration}".encode()).digest()[:4], "little")


def train_config(ctx: RunContext, iteration: int) -> Any:
    from stages.lm.engine.config import TrainConfig, shared_settings

    p = ctx.params
    tracking = ctx.runtime.tracking
    return TrainConfig(
        **shared_settings(p.optim, p.precision, p.lora),
        epochs=max(1, math.ceil(p.epochs_per_iteration)), global_batch_groups=p.global_batch_size,
        micro_batch_tokens=p.micro_batch_tokens, max_length=p.max_length,
        seed=iteration_seed(ctx.runtime.seed, iteration), checkpoint_every=p.save_every_steps,
        keep_last=p.keep_checkpoints, log_every=1,
        wandb_project=tracking.project if tracking.wandb else None, wandb_mode=tracking.mode,
    )


def make_trainer(ctx: RunContext, state: SpinState, total_steps: int, tokenizer: Any) -> Trainer:
    """The engine's trainer with its checkpoints under the stage's ``checkpoints/iter-<t>``."""
    t = state.iteration
    out = ctx.local_output_dir
    return Trainer(train_config(ctx, t), state.start_model, out / "work" / f"iter-{t}", total_steps=total_steps,
                       run_name=f"{ctx.manifest.run_id}.iter{t}", checkpoint_root=ctx.checkpoint_dir / f"iter-{t}",
                       tokenizer=tokenizer)


def training_records(out: Path, iteration: int, keep_previous: bool) -> list[dict[str, Any]]:
    """The kept pairs trained in ``iteration``: the previous iteration's (when asked), then this one's."""
    sources = [iteration - 1, iteration] if keep_previous and iteration > 0 else [iteration]
    return [r for s in sources for r in read_jsonl(pairs_path(out, s)) if r["kept"]]


def total_steps(num_pairs: int, batch: int, epochs: float) -> int:
    return max(1, math.ceil(epochs * math.ceil(num_pairs / batch)))


def run_scoring(ctx: RunContext, state: SpinState, state_path: Path, trainer: Trainer,
                records: list[dict[str, Any]], encoded: dict[int, EncodedPrompt]) -> None:
    """Reference log-prob sums of every training pair under the start-of-iteration model, chunk by chunk."""
    t, size = state.iteration, ctx.params.generation_batch_size
    path = reference_path(ctx.local_output_dir, t)
    chunks = [records[i:i + size] for i in range(0, len(records), size)]
    with ChunkLog(path, state.bytes) as log:
        for c in range(state.chunk, len(chunks)):
            if ctx.stop_requested:
                raise ctx.preempt(str(state_path))
            groups = [_group(encoded, r) for r in chunks[c]]
            sums = response_logprob_sums(trainer.logprobs(groups), groups)
            state.bytes = log.append([
                {"source_iteration": r["iteration"], "position": r["position"], "ref_logp_chosen": a,
                 "ref_logp_rejected": b} for r, (a, b) in zip(chunks[c], sums)
            ])
            state.chunk = c + 1
            state.save(state_path)
            ctx.report(state.progress(ctx.params.iterations, state.chunk / len(chunks)),
                       f"iteration {t}: reference log-probs {state.chunk}/{len(chunks)}")
            stop_points.reached(f"score:{t}:{c}")
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


def run_training(ctx: RunContext, state: SpinState, trainer: Trainer, records: list[dict[str, Any]],
                 encoded: dict[int, EncodedPrompt]) -> None:
    """Train on the iteration's pairs to the end (resuming from the newest checkpoint) or raise ``Preempted``."""
    from stages.lm.engine.data import EpochBatches
    from stages.spin.loss import SPINLoss

    p, iteration = ctx.params, state.iteration
    refs = read_jsonl(reference_path(ctx.local_output_dir, iteration))
    if len(refs) != len(records):
        raise RuntimeError(f"iteration {iteration}: {len(refs)} reference records for {len(records)} pairs")
    groups = [_group(encoded, r, ref) for r, ref in zip(records, refs)]
    data = EpochBatches(groups, epochs=trainer.config.epochs, seed=trainer.config.seed,
                        batch_groups=p.global_batch_size)
    loss = SPINLoss(beta=p.beta, loss_type=p.loss)
    every_s = ctx.runtime.checkpoint_every_minutes * 60
    trainer.resume(data)  # the newest checkpoint of this iteration, if any (weights, optimizer, data position)
    clock = {"saved": time.monotonic(), "hooked": trainer.step}

    def should_stop() -> bool:
        if trainer.step > clock["hooked"]:
            clock["hooked"] = trainer.step
            ctx.report(state.progress(p.iterations, trainer.step / trainer.total_steps),
                       f"iteration {iteration}: step {trainer.step}/{trainer.total_steps}")
            stop_points.reached(f"train:{iteration}:{trainer.step}")
        return ctx.stop_requested or time.monotonic() - clock["saved"] > every_s

    while True:
        result = trainer.fit(data, loss, should_stop=should_stop, resume=False)
        if result.checkpoint is not None:
            ctx.note_checkpoint(str(result.checkpoint))
        if result.status == "completed":
            return
        if ctx.stop_requested:
            raise ctx.preempt(str(result.checkpoint))
        clock["saved"] = time.monotonic()  # a timed checkpoint was written: carry on from memory
