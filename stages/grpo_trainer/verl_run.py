"""The verl engine: GRPO through ``verl.trainer.main_ppo`` with vLLM rollouts, run as a child process group.

Why a child process: verl owns Ray, vLLM and FSDP, and has no save-on-signal hook (reference §5). So the stage
builds and validates the overrides, records them with the resolved config and versions, starts the launcher
script in its own process group (the lifecycle forwards stop signals to it), and on a stop request waits for the
group to end and reports the last checkpoint verl saved: ``resume_mode=auto`` continues from it after the requeue.
Exit code 0 alone is never trusted (reference §2.6, §3.6): the checkpoint tracker must name the final step before
the actor is merged into a Hugging Face folder with verl's own model merger.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from stages.core import RunContext, StageResult
from stages.grpo_trainer import metrics as M
from stages.grpo_trainer.prompts import read_prompts
from stages.grpo_trainer.reward_fn import resolve_reward_path
from stages.grpo_trainer.verl_compose import compose_and_validate, resolved
from stages.grpo_trainer.verl_launcher import write_launcher
from stages.grpo_trainer.verl_overrides import VerlJob, build_overrides, total_steps

# import name -> what to install; `transfer_queue` backs verl's default v1 trainer (reference §1)
RUNTIME_MODULES = {
    "verl": "verl==0.9.1",
    "vllm": "vllm (verl's rollout engine; verl 0.9.1's vllm extra pins vllm==0.24.0)",
    "ray": "ray",
    "transfer_queue": "TransferQueue>=0.1.10 (verl's default v1 trainer)",
    "uvicorn": "uvicorn",
    "fastapi": "fastapi",
    "cachetools": "cachetools",
}
VERSION_DISTS = ("verl", "vllm", "ray", "TransferQueue", "torch", "transformers", "flash-attn", "hydra-core")
TRACKER = "latest_checkpointed_iteration.txt"
STOP_GRACE_S = 60.0


class MissingDependency(RuntimeError):
    """The verl engine cannot run in this environment; the message names what to install."""


def missing_dependencies() -> list[str]:
    return [hint for module, hint in RUNTIME_MODULES.items() if importlib.util.find_spec(module) is None]


def check_runtime() -> None:
    missing = missing_dependencies()
    if missing:
        raise MissingDependency(
            "engine verl cannot run here: missing " + "; ".join(missing) + ". Use the grpo-trainer image (GPU "
            "nodes), or engine native. verl's GRPO needs vLLM for rollouts and cannot run on a CPU."
        )


def versions() -> dict[str, str]:
    out = {}
    for dist in VERSION_DISTS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def metrics_log_path(ctx: RunContext) -> Path:
    """verl's `file` logger truncates its file when it opens it, so every attempt gets its own (reference §4)."""
    return ctx.local_output_dir / "verl" / f"metrics-attempt-{ctx.manifest.status.attempt}.jsonl"


def worker_env(ctx: RunContext) -> dict[str, str]:
    """Variables Ray's workers need: wandb's (verl passes no mode/id/dir), HF offline, where `stages` is, and the
    file logger's path (the logger lives in a Ray actor, possibly on another node)."""
    tracking = ctx.runtime.tracking
    env = {k: os.environ[k] for k in ("WANDB_MODE", "WANDB_DIR", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                                       "TRANSFORMERS_OFFLINE", "HF_HOME") if k in os.environ}
    env.setdefault("WANDB_MODE", tracking.mode if tracking.wandb else "disabled")
    env["WANDB_DIR"] = env.get("WANDB_DIR") or str(ctx.local_output_dir)
    env["WANDB_RUN_ID"] = M.wandb_run_id(ctx.manifest.run_id, ctx.manifest.provenance.spec_hash)
    env["WANDB_RESUME"] = "allow"
    if tracking.entity:
        env["WANDB_ENTITY"] = tracking.entity
    if tracking.group:
        env["WANDB_RUN_GROUP"] = tracking.group
    env["VERL_FILE_LOGGER_PATH"] = str(metrics_log_path(ctx).resolve())
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    return env


def slurm_cpus() -> int | None:
    for var in ("SLURM_CPUS_ON_NODE", "SLURM_CPUS_PER_TASK"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return None


def make_job(ctx: RunContext, steps: int, epochs: int) -> VerlJob:
    p = ctx.params
    attn = p.verl.attn_implementation
    if attn == "auto":
        attn = "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"
    val = ctx.inputs.get("val_prompts")
    return VerlJob(
        model_path=str(ctx.inputs["model"].path.resolve()),
        train_files=str(ctx.inputs["prompts"].path.resolve()),
        val_files=str(val.path.resolve()) if val else None,
        output_dir=str(ctx.local_output_dir.resolve()),
        reward_path=str(resolve_reward_path(p.reward_function.path, p.reward_function.name)),
        nnodes=ctx.spec.resources.nodes,
        gpus_per_node=ctx.spec.resources.gpus_per_node,
        cpus=slurm_cpus(),
        experiment_name=ctx.manifest.run_id,
        project_name=ctx.runtime.tracking.project,
        seed=ctx.runtime.seed,
        thinking=ctx.runtime.thinking,
        wandb=ctx.runtime.tracking.wandb and ctx.runtime.tracking.mode != "disabled",
        attn_implementation=attn,
        total_steps=steps,
        total_epochs=epochs,
        env_vars=worker_env(ctx),
    )


def tracker_step(checkpoint_dir: Path) -> int | None:
    """The last step verl finished saving, or None. verl writes the tracker non-atomically: it must parse."""
    path = checkpoint_dir / TRACKER
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8").strip()
    if not text.isdigit():
        raise RuntimeError(f"{path} holds {text!r}, not a step number: the last checkpoint write was cut off")
    step = int(text)
    if not (checkpoint_dir / f"global_step_{step}" / "actor").is_dir():
        raise RuntimeError(f"{path} names step {step}, but global_step_{step}/actor is missing")
    return step


def _last_logged_step(path: Path) -> int:
    records = M.read_jsonl(path)
    return int(records[-1].get("step", 0)) if records else 0


def _stop_group(proc: subprocess.Popen) -> None:
    """The lifecycle already forwarded the signal; give verl a grace period, then kill the whole group."""
    deadline = time.monotonic() + STOP_GRACE_S
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(1.0)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def launch(ctx: RunContext, job: VerlJob, overrides: list[str]) -> None:
    """Run the launcher until it ends; raise ``Preempted`` on a stop request, ``RuntimeError`` on failure."""
    out = ctx.local_output_dir
    attempt = ctx.manifest.status.attempt
    workdir = out / "verl"
    script = write_launcher(workdir / "launch.sh", job.nnodes, job.gpus_per_node, ctx.params.verl.ray_port,
                            sys.executable)
    metrics_log = metrics_log_path(ctx)
    log_path = out / "logs" / f"verl-attempt-{attempt}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **job.env_vars)
    env["VERL_FILE_LOGGER_PATH"] = str(metrics_log)
    ctx.log.info("starting verl (%d node(s) x %d GPU(s)); log %s", job.nnodes, job.gpus_per_node, log_path)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(["bash", str(script), *overrides], cwd=workdir, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        ctx.add_child_process_group(proc.pid)
        while proc.poll() is None and not ctx.stop_requested:
            step = _last_logged_step(metrics_log)
            ctx.report(step / job.total_steps, f"step {step}/{job.total_steps}")
            time.sleep(2.0)
        if ctx.stop_requested:  # the signal was forwarded to the group; verl saves nothing on it
            _stop_group(proc)
            step = tracker_step(ctx.checkpoint_dir)
            raise ctx.preempt(str(ctx.checkpoint_dir / f"global_step_{step}") if step else None)
    if proc.returncode != 0:
        raise RuntimeError(f"verl main_ppo exited with code {proc.returncode}; see {log_path}")


def merge_actor(checkpoint_dir: Path, step: int, target: Path, log_path: Path) -> None:
    """``python -m verl.model_merger merge`` of the final actor into a Hugging Face folder, atomically."""
    actor = checkpoint_dir / f"global_step_{step}" / "actor"
    tmp = target.with_name(f".{target.name}.merging")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    cmd = [sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir", str(actor),
           "--target_dir", str(tmp)]
    with log_path.open("ab") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    if rc != 0 or not (tmp / "config.json").is_file():
        raise RuntimeError(f"verl's model merger failed on {actor} (exit {rc}); see {log_path}")
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)


def run_verl(ctx: RunContext) -> StageResult:
    check_runtime()
    p = ctx.params
    out = ctx.local_output_dir
    prompts = read_prompts(ctx.inputs["prompts"].path)
    steps, epochs = total_steps(len(prompts), p)
    job = make_job(ctx, steps, epochs)
    overrides = build_overrides(p, job)
    cfg = compose_and_validate(overrides)
    ctx.set_engine_config({"engine": "verl", "launcher": "verl/launch.sh", "overrides": overrides,
                           "versions": versions(), "resolved": resolved(cfg)})
    done = tracker_step(ctx.checkpoint_dir)
    if done is None or done < steps:
        launch(ctx, job, overrides)
        done = tracker_step(ctx.checkpoint_dir)
    if done != steps:
        raise RuntimeError(
            f"verl exited 0 but its last checkpoint is step {done}, not the final step {steps}: it stopped early "
            "(see the verl log); refusing to publish an unfinished model"
        )
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
        summary=summary,
    )
