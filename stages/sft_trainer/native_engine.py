"""The native engine: the manifest's hyperparameters mapped onto ``stages.lm``'s trainer, same names as for verl.

Why the mapping lives here: a study switches engines by ``runtime.engine`` alone, so every top-level param must
mean the same on both. The global batch is ``global_batch_size`` sequences, the micro-batch budget is
``micro_batch_tokens`` per GPU, warm-up and schedule follow ``optim``, and the step count is the one verl would
take (``plan``), passed as the trainer's total. One process trains in the stage's own process (a CPU or one GPU);
several GPUs run ``native_worker`` under torchrun. The model is exported to ``model/`` by the engine itself.
"""

from __future__ import annotations

from typing import Any

from stages.core import NotImplementedYet, RunContext
from stages.lm.launch.stop_request import stop_file_for
from stages.sft_trainer import launcher, metrics
from stages.sft_trainer.native_train import NativeJob, train
from stages.sft_trainer.params import SFTParams
from stages.sft_trainer.prepare import Prepared

WORKER_MODULE = "stages.sft_trainer.native_worker"


def train_config(params: SFTParams, runtime: Any, prepared: Prepared) -> dict[str, Any]:
    """``stages.lm.engine.TrainConfig`` fields from the manifest, as JSON (the torchrun workers read them)."""
    import dataclasses

    from stages.lm.engine.config import shared_settings

    shared = shared_settings(params.optim, params.precision, params.lora)
    lora = shared["lora"]
    tracking = runtime.tracking
    return {
        **shared,
        "betas": list(shared["betas"]),
        "lora": None if lora is None else {**dataclasses.asdict(lora), "target_modules": list(lora.target_modules)},
        "epochs": prepared.epochs,
        "max_steps": prepared.total_steps,
        "global_batch_groups": params.global_batch_size,
        "micro_batch_tokens": params.micro_batch_tokens,
        "max_length": params.max_length,
        "seed": runtime.seed,
        "checkpoint_every": params.save_every_steps,
        "keep_last": params.keep_checkpoints,
        "wandb_project": tracking.project if tracking.wandb else None,
        "wandb_mode": tracking.mode,
        "grad_sync": params.native.grad_sync,
        "optimizer_offload": params.native.optimizer_offload,
    }


def make_job(ctx: RunContext, prepared: Prepared) -> NativeJob:
    out = ctx.local_output_dir
    return NativeJob(
        model_dir=str(ctx.inputs["model"].path),
        run_dir=str(out),
        train_file=str(out / "data" / "train.parquet"),
        val_file=str(out / "data" / "val.parquet") if prepared.selection.val else None,
        config=train_config(ctx.params, ctx.runtime, prepared),
        total_steps=prepared.total_steps,
        thinking=ctx.runtime.thinking,
        truncate=ctx.params.truncation == "right",
        run_name=ctx.manifest.run_id,
    )


def _in_process(ctx: RunContext, job: NativeJob) -> dict[str, Any]:
    def should_stop(step: int) -> bool:
        ctx.report(step / job.total_steps, f"step {step}/{job.total_steps}")
        return ctx.stop_requested

    return train(job, should_stop=should_stop)


def _under_torchrun(ctx: RunContext, job: NativeJob, prepared: Prepared) -> dict[str, Any]:
    import json

    from stages.lm.engine.checkpoint import latest_checkpoint

    if prepared.world.nodes > 1:
        raise NotImplementedYet("sft-trainer native engine on several nodes (use engine verl)")
    out = ctx.local_output_dir
    attempt = ctx.manifest.status.attempt
    job_file = out / "logs" / f"native-job-attempt-{attempt}.json"
    job_file.parent.mkdir(parents=True, exist_ok=True)
    job_file.write_text(job.to_json())
    result_file = job_file.with_name(job_file.name + ".result.json")
    result_file.unlink(missing_ok=True)
    cmd = launcher.torchrun_command(prepared.world, WORKER_MODULE, [str(job_file)])
    log_path = out / "logs" / f"native-attempt-{attempt}.log"

    def report() -> None:
        step = metrics.last_step(out / "metrics.jsonl")
        ctx.report(step / job.total_steps, f"step {step}/{job.total_steps}")

    code = launcher.run_group(ctx, cmd, launcher.child_environment({}), log_path, cwd=out, on_poll=report,
                              stop_file=stop_file_for(job_file))
    if code != 0 and not ctx.stop_requested:
        raise RuntimeError(f"native training exited with code {code}; log {log_path}:\n{launcher.log_tail(log_path)}")
    if result_file.exists():
        return json.loads(result_file.read_text())
    if not ctx.stop_requested:
        raise RuntimeError(f"native training ended without a result; log {log_path}:\n{launcher.log_tail(log_path)}")
    latest = latest_checkpoint(out / "checkpoints")
    return {"status": "preempted", "step": None, "checkpoint": str(latest) if latest else None, "val_loss": None}


def run_native(ctx: RunContext, prepared: Prepared) -> dict[str, Any]:
    """Train, validate, export; return the engine's part of the summary. Raises ``ctx.preempt`` on a stop signal."""
    job = make_job(ctx, prepared)
    ctx.set_engine_config({"engine": "native", "train_config": job.config, "total_steps": job.total_steps,
                           "steps_per_epoch": prepared.steps_per_epoch,
                           "world": {"nodes": prepared.world.nodes, "ranks_per_node": prepared.world.ranks_per_node,
                                     "cpu": prepared.world.cpu}})
    if prepared.world.size == 1:
        result = _in_process(ctx, job)
    else:
        result = _under_torchrun(ctx, job, prepared)
    if result["status"] != "completed":
        raise ctx.preempt(result.get("checkpoint"))
    path = ctx.local_output_dir / "metrics.jsonl"
    records = metrics.one_per_step(metrics.read_jsonl(path))
    metrics.write_jsonl(path, records)
    return metrics.summarize(records)
