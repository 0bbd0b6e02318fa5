"""The verl engine: verl 0.9.1's own ``sft_trainer`` under torchrun, resumed by verl, merged by verl.

Why the stage wraps rather than reimplements: verl is what the study runs at scale. The stage's job is everything
verl does not do: build and check the overrides (recorded with the resolved config and verl's version in the
manifest), launch on the GPUs the job got (gloo ranks and the CPU platform where there is none), answer stop
signals (verl has no handler: the torchrun group is stopped and the stage reports the newest checkpoint, from
which ``trainer.resume_mode=auto`` continues on the next attempt), check that the tracker really reached the
planned step (bug #7401 exits 0 without training), and merge the last checkpoint into a Hugging Face folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.core import RunContext
from stages.lm.verl.checkpoints import checkpoint_world_size, latest_checkpoint, step_dir, tracked_step
from stages.lm.verl.config import resolved, validate_sft, verl_version
from stages.lm.verl.merge import merge_checkpoint
from stages.lm.verl.overrides import attention
from stages.sft_trainer import launcher, metrics, plan, verl_config
from stages.sft_trainer.prepare import Prepared
from stages.sft_trainer.verl_job import make_job
from stages.sft_trainer.verl_overrides import build_overrides

LAUNCH_MODULE = "stages.sft_trainer.verl_launch"


def _metrics_files(logs: Path) -> list[Path]:
    return sorted(logs.glob("verl-metrics-attempt-*.jsonl"), key=lambda p: int(p.stem.rsplit("-", 1)[-1]))


def fold_metrics(out: Path) -> list[dict[str, Any]]:
    records = metrics.verl_records(_metrics_files(out / "logs"))
    metrics.write_jsonl(out / "metrics.jsonl", records)
    return records


def _wandb_env(ctx: RunContext) -> dict[str, str]:
    """One W&B run across requeued attempts (verl passes no id: wandb's variables decide; verl reference §4)."""
    tracking = ctx.runtime.tracking
    if not tracking.wandb:
        return {}
    spec_hash = (ctx.manifest.provenance.spec_hash or "").split(":")[-1]
    env = {"WANDB_RUN_ID": f"sft-{spec_hash[:16]}", "WANDB_RESUME": "allow"}
    if tracking.group:
        env["WANDB_RUN_GROUP"] = tracking.group
    if tracking.entity:
        env["WANDB_ENTITY"] = tracking.entity
    return env


def _guard_resume_point(ckpt: Path, prepared: Prepared) -> None:
    latest = latest_checkpoint(ckpt)
    written_by = checkpoint_world_size(latest) if latest else None
    if written_by is not None and written_by != prepared.world.size and tracked_step(ckpt) != prepared.total_steps:
        raise RuntimeError(
            f"{latest} was written by {written_by} ranks but this job has {prepared.world.size}: verl's sharded "
            "checkpoints resume only on the same number of GPUs; requeue with the original resources"
        )
    step = tracked_step(ckpt)
    if step is not None and plan.on_epoch_boundary(step, prepared.steps_per_epoch, prepared.total_steps):
        raise RuntimeError(
            f"the latest checkpoint (step {step}) sits on an epoch boundary ({prepared.steps_per_epoch} steps per "
            "epoch); verl resumes from it without training (bug #7401). The stage never saves there itself: was "
            "the checkpoint folder written by another run? Remove it to restart."
        )


def run_verl(ctx: RunContext, prepared: Prepared) -> dict[str, Any]:
    """Train, check, merge; return the engine's part of the summary. Raises ``ctx.preempt`` on a stop signal."""
    out = ctx.local_output_dir
    logs = out / "logs"
    attempt = ctx.manifest.status.attempt
    world = prepared.world
    job = make_job(ctx.spec, ctx.inputs, prepared, out, attention(ctx.params.verl.attn_implementation, world.cpu),
                   run_id=ctx.manifest.run_id)
    verl_config.check_install()
    overrides = build_overrides(ctx.params, job)
    cfg = verl_config.compose(overrides)
    if ctx.params.verl.extra_overrides:  # the stage's own overrides pass verl's checks in the tests; raw ones may not
        validate_sft(cfg)
    args = [*(["--cpu"] if world.cpu else []), *overrides, f"hydra.run.dir={logs / 'hydra'}"]
    cmd = launcher.torchrun_command(world, LAUNCH_MODULE, args)
    ctx.set_engine_config({
        "engine": "verl",
        "verl_version": verl_version(),
        "entry_point": "verl.trainer.sft_trainer (config sft_trainer_engine)",
        "overrides": overrides,
        "resolved_config": resolved(cfg),
        "command": cmd,
        "world": {"nodes": world.nodes, "ranks_per_node": world.ranks_per_node, "cpu": world.cpu},
        "steps_per_epoch": prepared.steps_per_epoch,
        "total_steps": prepared.total_steps,
        "save_freq": job.save_freq,
    })
    ckpt = ctx.checkpoint_dir
    _guard_resume_point(ckpt, prepared)
    total = prepared.total_steps
    if (tracked_step(ckpt) or 0) < total:
        metrics_file = logs / f"verl-metrics-attempt-{attempt}.jsonl"
        env = launcher.child_environment({"VERL_FILE_LOGGER_PATH": str(metrics_file), **_wandb_env(ctx)})

        def report() -> None:
            step = metrics.last_step(metrics_file)
            ctx.report(step / total, f"step {step}/{total}")

        log_path = logs / f"verl-attempt-{attempt}.log"
        ctx.log.info("starting verl sft_trainer: %d step(s), log %s", total, log_path)
        code = launcher.run_group(ctx, cmd, env, log_path, cwd=out, on_poll=report)
        fold_metrics(out)
        if ctx.stop_requested:
            latest = latest_checkpoint(ckpt)
            raise ctx.preempt(str(latest) if latest else None)
        if code != 0:
            raise RuntimeError(f"verl's sft_trainer exited with code {code}; log {log_path}:\n"
                               f"{launcher.log_tail(log_path)}")
    reached = tracked_step(ckpt)
    if reached != total:
        raise RuntimeError(
            f"verl exited cleanly but its checkpoint tracker says step {reached}, not the planned {total} "
            "(verl bug #7401 ends a run resumed at an epoch boundary without training); not trusting this run"
        )
    ctx.report(1.0, "merging the final checkpoint", force=True)
    merge_checkpoint(step_dir(ckpt, total), out / "model", logs / f"merge-attempt-{attempt}.log")
    records = fold_metrics(out)
    return metrics.summarize(records)
