"""The verl engine: GRPO through ``verl.trainer.main_ppo`` with vLLM rollouts, run as a child process group.

Why a child process: verl owns Ray, vLLM and FSDP, and has no save-on-signal hook (reference §5). So the stage
builds and validates the overrides, records them with the resolved config and versions, starts the launcher
script in its own process group (``stages.lm.verl.ray_job``: the lifecycle forwards stop signals to it, and a stop
request reports the last checkpoint verl saved, from which ``resume_mode=auto`` continues after the requeue).
Exit code 0 alone is never trusted (reference §2.6, §3.6): the checkpoint tracker must name the final step before
the actor is merged into a Hugging Face folder with verl's own model merger.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stages.core import RunContext, StageResult
from stages.envs.sandbox.gate import summary as isolation_summary
from stages.grpo_trainer import metrics as M
from stages.grpo_trainer.prompts import read_prompts
from stages.grpo_trainer.reward_fn import resolve_reward_path
from stages.grpo_trainer.verl_overrides import VerlJob, build_overrides, total_steps
from stages.lm.verl import ray_job
from stages.lm.verl.config import compose_and_validate_ppo, resolved
from stages.lm.verl.merge import merge_actor
from stages.lm.verl.overrides import attention
from stages.lm.verl.ray_launch import write_launcher

IMAGE = "grpo-trainer"


def make_job(ctx: RunContext, steps: int, epochs: int) -> VerlJob:
    p = ctx.params
    val = ctx.inputs.get("val_prompts")
    return VerlJob(
        model_path=str(ctx.inputs["model"].path.resolve()),
        train_files=str(ctx.inputs["prompts"].path.resolve()),
        val_files=str(val.path.resolve()) if val else None,
        output_dir=str(ctx.local_output_dir.resolve()),
        reward_path=str(resolve_reward_path(p.reward_function.path, p.reward_function.name)),
        nnodes=ctx.spec.resources.nodes,
        gpus_per_node=ctx.spec.resources.gpus_per_node,
        cpus=ray_job.slurm_cpus(),
        experiment_name=ctx.manifest.run_id,
        project_name=ctx.runtime.tracking.project,
        seed=ctx.runtime.seed,
        thinking=ctx.runtime.thinking,
        wandb=ctx.runtime.tracking.wandb and ctx.runtime.tracking.mode != "disabled",
        attn_implementation=attention(p.verl.attn_implementation),
        total_steps=steps,
        total_epochs=epochs,
        env_vars=ray_job.worker_env(ctx),
    )


def launch(ctx: RunContext, job: VerlJob, overrides: list[str]) -> None:
    """Write the launcher and run it until it ends; raise ``Preempted`` on a stop request, ``RuntimeError`` on
    failure."""
    script = write_launcher(ctx.local_output_dir / "verl" / "launch.sh", job.nnodes, job.gpus_per_node,
                            ctx.params.verl.ray_port, sys.executable)
    ctx.log.info("starting verl (%d node(s) x %d GPU(s))", job.nnodes, job.gpus_per_node)
    ray_job.run_script(ctx, script, overrides, job.env_vars, job.total_steps, what="verl main_ppo")


def run_verl(ctx: RunContext) -> StageResult:
    ray_job.check_runtime(IMAGE)
    p = ctx.params
    out = ctx.local_output_dir
    prompts = read_prompts(ctx.inputs["prompts"].path)
    steps, epochs = total_steps(len(prompts), p)
    job = make_job(ctx, steps, epochs)
    overrides = build_overrides(p, job)
    cfg = compose_and_validate_ppo(overrides)
    ctx.set_engine_config({"engine": "verl", "launcher": "verl/launch.sh", "overrides": overrides,
                           "versions": ray_job.versions(), "resolved": resolved(cfg)})
    ray_job.train_to(ctx, steps, lambda: launch(ctx, job, overrides))
    ctx.report(1.0, "merging the final actor", force=True)
    merge_actor(ctx.checkpoint_dir, steps, out / "model", out / "logs" / "merge.log")
    logs = sorted((out / "verl").glob("metrics-attempt-*.jsonl"), key=lambda q: int(q.stem.rsplit("-", 1)[-1]))
    records = M.verl_metrics(logs, Path(job.rollout_dir), p.group_size)
    M.write_jsonl(out / "metrics.jsonl", records)
    M.write_jsonl(out / "rollouts.jsonl", M.verl_rollouts(Path(job.rollout_dir), p.log_rollouts_every_steps))
    summary = {**M.summarize(records), "engine": "verl", "final_step": steps}
    return StageResult(
        outputs={"model": "model", "metrics": "metrics.jsonl", "checkpoints": "checkpoints",
                 "rollouts": "rollouts.jsonl"},
        summary={**summary, **isolation_summary()},
    )
