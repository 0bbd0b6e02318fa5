"""The verl engine of pi-distill: π-Distill or OPSD through ``stages.pi_distill.verl_main`` (verl's PPO trainer with
our ``_update_actor``), vLLM rollouts, FSDP, Ray on one node or several, as a child process group.

Why it looks like grpo-trainer's verl run: it is the same machinery (``stages.lm.verl``): overrides composed and
checked by verl's ``validate_config`` and recorded with the resolved config and versions, the Ray launcher script
(``stages.lm.verl.ray_launch``, entry ``stages.pi_distill.verl_main``) in its own process group, stop signals
answered by reporting verl's last checkpoint (``resume_mode=auto`` continues after the requeue), the tracker checked
to name the final step before the actor is merged into a Hugging Face folder by verl's merger, and the reward file
grpo-trainer uses (``stages/envs/verl_reward.py``: the GEM graders). Its own parts: the prompt files in the
sampling view with the other view beside them (``verl_data``), π-Distill's overrides, and its metric names.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from stages.core import RunContext, StageResult
from stages.lm.verl import ray_job
from stages.lm.verl.config import compose_and_validate_ppo, resolved
from stages.lm.verl.merge import merge_actor
from stages.lm.verl.overrides import attention
from stages.lm.verl.ppo_overrides import VerlJob, ppo_steps
from stages.pi_distill import verl_metrics as VM
from stages.pi_distill.metrics import summarize, write_jsonl
from stages.pi_distill.prompts import read_prompts
from stages.pi_distill.verl_data import VerlData, write_verl_data
from stages.pi_distill.verl_overrides import build_overrides

ENTRY = "stages.pi_distill.verl_main"
REWARD_MODULE = "stages.envs.verl_reward"


def reward_path() -> str:
    """The file of the project's reward function (grpo-trainer's default too), found without importing it."""
    spec = importlib.util.find_spec(REWARD_MODULE)
    if spec is None or not spec.origin:
        raise ray_job.MissingDependency(f"{REWARD_MODULE} (stages/envs/verl_reward.py) is not in this installation")
    return str(Path(spec.origin).resolve())


def make_job(ctx: RunContext, data: VerlData, steps: int, epochs: int) -> VerlJob:
    p, res = ctx.params, ctx.spec.resources
    return VerlJob(
        model_path=str(ctx.inputs["model"].path.resolve()), train_files=str(data.train.resolve()),
        val_files=str(data.val.resolve()), output_dir=str(ctx.local_output_dir.resolve()), reward_path=reward_path(),
        nnodes=res.nodes, gpus_per_node=res.gpus_per_node, cpus=ray_job.slurm_cpus(),
        experiment_name=ctx.manifest.run_id, project_name=ctx.runtime.tracking.project, seed=ctx.runtime.seed,
        thinking=ctx.runtime.thinking, wandb=ctx.runtime.tracking.wandb and ctx.runtime.tracking.mode != "disabled",
        attn_implementation=attention(p.verl.attn_implementation), total_steps=steps, total_epochs=epochs,
        env_vars=ray_job.worker_env(ctx),
    )


def launch(ctx: RunContext, job: VerlJob, overrides: list[str]) -> None:
    from stages.lm.verl.ray_launch import write_launcher

    script = write_launcher(ctx.local_output_dir / "verl" / "launch.sh", job.nnodes, job.gpus_per_node,
                            ctx.params.verl.ray_port, sys.executable, entry=ENTRY)
    ctx.log.info("starting verl π-Distill (%d node(s) x %d GPU(s))", job.nnodes, job.gpus_per_node)
    ray_job.run_script(ctx, script, overrides, job.env_vars, job.total_steps, what=f"verl ({ENTRY})")


def run_verl(ctx: RunContext) -> StageResult:
    from transformers import AutoTokenizer

    ray_job.check_runtime("pi-distill")
    p, out = ctx.params, ctx.local_output_dir
    rows = read_prompts(ctx.inputs["prompts"].path, p.privileged_source, p.privileged_template)
    tokenizer = AutoTokenizer.from_pretrained(str(ctx.inputs["model"].path), local_files_only=True)
    data = write_verl_data(rows, tokenizer, p, ctx.runtime.thinking, out / "data")
    steps, epochs = ppo_steps(data.train_rows, p.prompts_per_step, p.epochs, p.max_steps)
    job = make_job(ctx, data, steps, epochs)
    overrides = build_overrides(p, job)
    cfg = compose_and_validate_ppo(overrides)
    ctx.set_engine_config({"engine": "verl", "entry": ENTRY, "launcher": "verl/launch.sh", "overrides": overrides,
                           "versions": ray_job.versions(), "resolved": resolved(cfg), "variant": p.variant,
                           "prompts": len(rows), "prompts_kept": data.kept,
                           "prompts_over_max_prompt_length": data.over_length, "train_prompts": data.train_rows,
                           "heldout_prompts": data.heldout_rows, "student_eval_prompts": data.eval_rows,
                           "rollout_steps": steps})
    ray_job.train_to(ctx, steps, lambda: launch(ctx, job, overrides))
    ctx.report(1.0, "merging the final actor", force=True)
    merge_actor(ctx.checkpoint_dir, steps, out / "model", out / "logs" / "merge.log")
    logs = sorted((out / "verl").glob("metrics-attempt-*.jsonl"), key=lambda q: int(q.stem.rsplit("-", 1)[-1]))
    records = VM.verl_records(logs, p.variant)
    write_jsonl(out / "metrics.jsonl", records)
    view = "teacher" if p.variant == "pi-distill" else "student"
    write_jsonl(out / "rollouts.jsonl", VM.verl_rollouts(Path(job.rollout_dir), p.log_rollouts_every_steps, view))
    summary = {**summarize(records), "engine": "verl", "variant": p.variant, "alpha": p.alpha, "beta": p.beta,
               "final_step": steps, "prompts_kept": data.kept, "heldout_prompts": data.heldout_rows}
    return StageResult(outputs={"model": "model", "metrics": "metrics.jsonl", "checkpoints": "checkpoints",
                                "rollouts": "rollouts.jsonl"}, summary=summary)
