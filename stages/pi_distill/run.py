"""The pi-distill run: π-Distill (or OPSD) on the shared native engine, one process (CPU or one GPU); with
``engine: verl`` the run is ``verl_run`` instead (verl's PPO trainer with our actor update, on 1+ GPUs and nodes).

Per rollout step: the step's prompts (a seeded order over the training prompts) are answered ``group_size`` times
by the sampling view with the current weights (seeded from (seed, step)), graded, scored under both views, turned
into shaped GRPO advantages; then ``ppo_epochs`` passes over mini-batches make the optimizer steps, and the student
answers a slice of held-out prompts without the privileged information. A checkpoint (engine: weights, optimizer,
RNG, data position; plus ``pi_distill_state.json``) is written every ``save_every_steps`` steps, at least every
``checkpoint_every_minutes``, and on a stop signal, which is polled between steps and before a step's first
optimizer step; the run resumes from the latest checkpoint and ends with the same weights as an uninterrupted run.
Outputs: ``model`` (Hugging Face folder), ``checkpoints``, ``metrics.jsonl``, ``rollouts.jsonl``.
"""

from __future__ import annotations

import time
from typing import Any

from stages.core import InputError, RunContext, StageResult
from stages.envs.sandbox.gate import summary as isolation_summary
from stages.pi_distill import heldout, stop_points
from stages.pi_distill import step as S
from stages.pi_distill.metrics import StepLog, summarize
from stages.pi_distill.preflight import check_unbuilt
from stages.pi_distill.prompts import read_prompts
from stages.pi_distill.rollout import encode
from stages.pi_distill.state import RolloutState, heldout_split, total_steps, write_state_file


def _checks(ctx: RunContext) -> None:
    check_unbuilt(ctx.params, ctx.spec.resources, ctx.engine)


def _save(ctx: RunContext, trainer: Any, state: RolloutState, steps: int) -> str:
    path = trainer.save_checkpoint()
    write_state_file(ctx.checkpoint_dir, state, path, steps)
    return str(path)


def run(ctx: RunContext) -> StageResult:
    if ctx.engine == "verl":
        from stages.pi_distill.verl_run import run_verl

        return run_verl(ctx)
    return run_native(ctx)


def run_native(ctx: RunContext) -> StageResult:
    from stages.pi_distill.engine import make_trainer
    from stages.pi_distill.objective import make_objective

    _checks(ctx)
    p, rt, out = ctx.params, ctx.runtime, ctx.local_output_dir
    rows = read_prompts(ctx.inputs["prompts"].path, p.privileged_source, p.privileged_template)
    steps_guess = total_steps(len(rows), p.prompts_per_step, p.epochs, p.max_steps)
    trainer = make_trainer(ctx, steps_guess * p.updates_per_step)
    encoded, too_long = encode(rows, trainer.tokenizer, rt.thinking, p.max_prompt_length)
    if not encoded:
        raise InputError(f"none of the {len(rows)} teacher prompts fits max_prompt_length {p.max_prompt_length} "
                         "tokens", "$.spec.params.max_prompt_length")
    train_pos, held_pos = heldout_split(len(encoded), p.heldout_fraction, p.prompts_per_step)
    train, held = [encoded[i] for i in train_pos], [encoded[i] for i in held_pos]
    steps = total_steps(len(train), p.prompts_per_step, p.epochs, p.max_steps)
    trainer.total_steps = steps * p.updates_per_step
    state = RolloutState(len(train), p.prompts_per_step, rt.seed)
    trainer.attach_state(state)
    resumed = trainer.resume(state)
    objective = make_objective(p)
    ctx.set_engine_config({"engine": "native", "variant": p.variant, "generation_backend": p.generation_backend,
                           "train_config": trainer.config.to_dict(), "rollout_steps": steps,
                           "optimizer_steps_max": trainer.total_steps, "prompts": len(rows),
                           "prompts_kept": len(encoded), "prompts_over_max_prompt_length": too_long,
                           "train_prompts": len(train), "heldout_prompts": len(held),
                           "resumed_from_step": state.step if resumed else None})
    log = StepLog(out, ctx)
    last_save, every_s = time.monotonic(), rt.checkpoint_every_minutes * 60
    try:
        while state.step < steps:
            if ctx.stop_requested:
                raise ctx.preempt(_save(ctx, trainer, state, steps))
            started = time.perf_counter()
            snapshot = state.state_dict()
            prompts = [train[i] for i in state.next_prompts()]
            batch = S.collect(trainer, prompts, state.step, p, rt.seed, rt.thinking)
            stop_points.reached(f"update:{state.step + 1}")
            if ctx.stop_requested:  # no weight has changed this step: rewind it and checkpoint its start
                state.load_state_dict(snapshot)
                raise ctx.preempt(_save(ctx, trainer, state, steps))
            updates = S.update(trainer, objective, batch, p)
            record = S.record(batch, updates, p)
            state.optimizer_steps += len(updates)
            state.skipped_updates += 0 if updates else 1
            state.dropped_groups += record["dropped_groups"]
            record.update(heldout.evaluate(trainer, held, state.step, p, rt.seed, rt.thinking))
            state.step += 1
            record.update(epoch=state.epoch, step_time_s=time.perf_counter() - started)
            log.log(state.step, record)
            if state.step % p.log_rollouts_every_steps == 0 or state.step == 1:
                log.rollouts(state.step, S.rollout_items(batch, p))
            ctx.report(state.step / steps, f"step {state.step}/{steps} teacher reward "
                       f"{record.get('teacher_reward') or 0:.3f} student reward {record['student_reward'] or 0:.3f}")
            stop_points.reached(f"step:{state.step}")
            due = state.step % p.save_every_steps == 0 or time.monotonic() - last_save > every_s
            if due and state.step < steps and not ctx.stop_requested:
                ctx.note_checkpoint(_save(ctx, trainer, state, steps))
                last_save = time.monotonic()
        ctx.note_checkpoint(_save(ctx, trainer, state, steps))
        ctx.report(1.0, "exporting the model", force=True)
        trainer.export_hf(out / "model")
    finally:
        trainer.close()
        log.close()
    records = log.finish()
    summary = {**summarize(records), "engine": "native", "variant": p.variant, "alpha": p.alpha, "beta": p.beta,
               "optimizer_steps": state.optimizer_steps, "skipped_updates": state.skipped_updates,
               "dropped_groups_total": state.dropped_groups, "prompts_kept": len(encoded),
               "heldout_prompts": len(held)}
    return StageResult(outputs={"model": "model", "metrics": "metrics.jsonl", "checkpoints": "checkpoints",
                                "rollouts": "rollouts.jsonl"}, summary={**summary, **isolation_summary()})
