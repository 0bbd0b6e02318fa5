"""The native engine: GRPO on ``stages.lm`` (one process: CPU, one GPU, tests).

Why on the shared engine: the forgetting comparison is fair only if every method trains through the same loading,
optimizer, schedule, precision and checkpoint code; GRPO here is a data flow (sample a group per prompt, grade,
group-normalised advantages, drop all-equal groups) plus the engine's clipped policy-gradient loss
(``stages.lm.losses.grpo.GRPOLoss``, token-mean by default, KL to the reference only when ``kl_coef > 0``).

Per rollout step: the step's prompts are sampled ``group_size`` times by the current weights, graded by the reward
file, turned into advantages; old (and reference) log-probs are computed once; then ``ppo_epochs`` passes over
mini-batches of ``mini_batch_size`` prompts each make one optimizer step. A checkpoint is written every
``save_every_steps`` rollout steps, at least every ``checkpoint_every_minutes``, and on a stop signal; the run
resumes from the latest one.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from stages.core import NotImplementedYet, RunContext, StageResult
from stages.envs.sandbox.gate import summary as isolation_summary
from stages.grpo_trainer import metrics as M
from stages.grpo_trainer import native_rollout as R
from stages.grpo_trainer.native_state import RolloutState
from stages.grpo_trainer.native_trainer import make_trainer
from stages.grpo_trainer.prompts import PromptRow, read_prompts
from stages.grpo_trainer.reward_fn import resolve_reward_path
from stages.grpo_trainer.verl_overrides import total_steps


def step_seed(seed: int, step: int) -> int:
    return int.from_bytes(hashlib.sha256(f"grpo:{seed}:{step}".encode()).digest()[:4], "little")


def encode_prompts(rows: list[PromptRow], tokenizer: Any, thinking: bool, limit: int) -> tuple[list, list[int]]:
    """Prompt token ids (the chat format generation uses) of the rows that fit ``limit`` tokens; the rest dropped."""
    from stages.lm.chat import ChatFormat

    fmt = ChatFormat(thinking=thinking)
    kept, ids = [], []
    for row in rows:
        p = fmt.prompt_ids(tokenizer, row.messages)
        if len(p) <= limit:
            kept.append(row)
            ids.append(p)
    return kept, ids


def _update(trainer: Any, loss: Any, groups: list[list[Any]], prompt_of: list[int], prompts_per_update: int,
            epochs: int) -> list[dict[str, float]]:
    """``epochs`` passes over mini-batches of whole prompt groups; one optimizer step each."""
    order = sorted(set(prompt_of))
    chunks = [set(order[i:i + prompts_per_update]) for i in range(0, len(order), prompts_per_update)]
    records = []
    for _ in range(epochs):
        for chunk in chunks:
            batch = [g for g, p in zip(groups, prompt_of) if p in chunk]
            records.append(trainer.train_step(batch, loss))
    return records


def _mean(records: list[dict[str, float]], key: str) -> float | None:
    vals = [r[key] for r in records if key in r]
    return sum(vals) / len(vals) if vals else None


def run_native(ctx: RunContext) -> StageResult:
    p = ctx.params
    if p.native.generation_backend != "hf":
        raise NotImplementedYet("the native engine with the vllm generation backend (needs a stages.lm vLLM "
                                "backend that takes updated weights between steps)")
    out = ctx.local_output_dir
    reward_path = resolve_reward_path(p.reward_function.path, p.reward_function.name)
    reward_fn = R.load_reward_function(reward_path, p.reward_function.name)
    from stages.lm.loading import load_tokenizer

    all_rows = read_prompts(ctx.inputs["prompts"].path)
    tokenizer = load_tokenizer(ctx.inputs["model"].path)
    rows, prompt_ids = encode_prompts(all_rows, tokenizer, ctx.runtime.thinking, p.max_prompt_length)
    state = RolloutState(len(rows), p.prompts_per_step, ctx.runtime.seed)
    steps, _ = total_steps(len(rows), p)
    updates_per_step = (p.prompts_per_step // p.mini_batch_size) * p.ppo_epochs
    trainer, loss = make_trainer(ctx, steps * updates_per_step, tokenizer)
    trainer._data = state  # rides in the engine checkpoint (stages.lm has no public hook for extra state yet)
    resumed = trainer.resume(state)
    ctx.set_engine_config({"engine": "native", "train_config": trainer.config.to_dict(), "total_rollout_steps": steps,
                           "optimizer_steps": steps * updates_per_step, "prompts_kept": len(rows),
                           "prompts_over_max_prompt_length": len(all_rows) - len(rows),
                           "reward_file": str(reward_path), "resumed_from_step": state.step if resumed else None})
    logger = M.StepLog(out, ctx)
    last_save = time.monotonic()
    every_s = ctx.runtime.checkpoint_every_minutes * 60
    G = p.group_size
    try:
        while state.step < steps:
            if ctx.stop_requested:
                raise ctx.preempt(str(trainer.save_checkpoint()))
            started = time.perf_counter()
            chosen = state.next_prompts()
            step_ids = [prompt_ids[i] for i in chosen]
            responses = R.sample(trainer, step_ids, n=G, temperature=p.sampling.temperature,
                                 top_p=p.sampling.top_p, top_k=p.sampling.top_k,
                                 max_tokens=p.sampling.max_new_tokens, seed=step_seed(ctx.runtime.seed, state.step),
                                 thinking=ctx.runtime.thinking, batch_size=p.native.generation_batch_size)
            generated = time.perf_counter()
            for r in responses:
                R.grade(reward_fn, rows[chosen[r.prompt]], r)
            adv, keep = R.advantages(responses, G, p.normalize_adv_by_std, p.drop_zero_variance_groups)
            kept = [(r, a) for r, a, k in zip(responses, adv, keep) if k]
            dropped = (len(responses) - len(kept)) // G
            record: dict[str, Any] = {}
            if kept:
                groups = R.build_samples(step_ids, [r for r, _ in kept], [a for _, a in kept])
                R.add_logprobs(trainer, groups, "old_logprobs")
                if p.kl_enabled:
                    R.add_logprobs(trainer, groups, "ref_logprobs", reference=True)
                record["entropy"] = R.mean_sampled_nll(groups)
                updates = _update(trainer, loss, groups, [r.prompt for r, _ in kept],
                                  p.mini_batch_size, p.ppo_epochs)
                record.update(pg_loss=_mean(updates, "loss"), clip_fraction=_mean(updates, "clip_fraction"),
                              grad_norm=_mean(updates, "grad_norm"), lr=_mean(updates, "lr"))
                if p.kl_enabled:
                    record["kl_ref"] = _mean(updates, "kl")
            else:
                state.skipped_updates += 1
            state.dropped_groups += dropped
            state.step += 1
            elapsed = time.perf_counter() - started
            tokens = sum(len(step_ids[r.prompt]) + len(r.token_ids) for r in responses)
            record.update(
                reward_mean=sum(r.reward for r in responses) / len(responses),
                accuracy=sum(r.correct for r in responses) / len(responses),
                response_length=sum(len(r.token_ids) for r in responses) / len(responses),
                dropped_groups=dropped, dropped_group_share=dropped / len(chosen),
                throughput_tokens_per_s_per_device=tokens / elapsed if elapsed > 0 else 0.0,
                step_time_s=elapsed, generation_time_s=generated - started, epoch=state.epoch,
            )
            logger.log(state.step, record)
            if state.step % p.log_rollouts_every_steps == 0 or state.step == 1:
                logger.rollouts(state.step, [_rollout(rows[chosen[r.prompt]], r) for r in responses])
            ctx.report(state.step / steps, f"step {state.step}/{steps} reward {record['reward_mean']:.3f}")
            due = state.step % p.save_every_steps == 0 or time.monotonic() - last_save > every_s
            if due and state.step < steps:
                ctx.note_checkpoint(str(trainer.save_checkpoint()))
                last_save = time.monotonic()
        final = trainer.save_checkpoint()
        ctx.note_checkpoint(str(final))
        ctx.report(1.0, "exporting the model", force=True)
        trainer.export_hf(out / "model")
    finally:
        trainer.close()
        logger.close()
    records = logger.finish()
    summary = {**M.summarize(records), "engine": "native", "dropped_groups_total": state.dropped_groups,
               "skipped_updates": state.skipped_updates, "prompts_kept": len(rows)}
    return StageResult(
        outputs={"model": "model", "metrics": "metrics.jsonl", "checkpoints": "checkpoints",
                 "rollouts": "rollouts.jsonl"},
        summary={**summary, **isolation_summary()},
    )


def _rollout(row: PromptRow, r: R.Response) -> dict[str, Any]:
    return {"prompt": row.messages[-1]["content"], "data_source": row.data_source, "response": r.text,
            "ground_truth": row.ground_truth, "reward": r.reward, "correct": r.correct, "finish": r.finish,
            "response_tokens": len(r.token_ids), "index": row.index}

