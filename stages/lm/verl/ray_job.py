"""Running a verl PPO-family job (grpo-trainer's GRPO, pi-distill's π-Distill) as a child process group.

Why a child process: verl owns Ray, vLLM and FSDP, and has no save-on-signal hook (verl reference §5). So a stage
builds and validates the overrides, writes the launcher script (Ray start-up on every node, then the entry module),
starts it in its own process group (the lifecycle forwards stop signals to it), reports progress from verl's file
logger, and on a stop request waits for the group to end and reports the last checkpoint verl saved:
``trainer.resume_mode=auto`` continues from it after the requeue. What the Ray workers need in their environment
(wandb's variables, HF offline, where ``stages`` is, the file logger's path) is gathered here too, with the
dependency check and the versions the manifest records.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from stages.lm.engine.step_log import read_jsonl, wandb_run_id
from stages.lm.launch.process_group import run_group
from stages.lm.launch.torchrun import child_environment
from stages.lm.verl.checkpoints import finished_step, step_dir

# import name -> what to install; `transfer_queue` backs verl's default v1 trainer (verl reference §1)
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


class MissingDependency(RuntimeError):
    """The verl engine cannot run in this environment; the message names what to install."""


def missing_dependencies(modules: dict[str, str] | None = None) -> list[str]:
    wanted = RUNTIME_MODULES if modules is None else modules
    return [hint for module, hint in wanted.items() if importlib.util.find_spec(module) is None]


def check_runtime(image: str, modules: dict[str, str] | None = None) -> None:
    missing = missing_dependencies(modules)
    if missing:
        raise MissingDependency(
            "engine verl cannot run here: missing " + "; ".join(missing) + f". Use the {image} image (GPU nodes), "
            "or engine native. verl's PPO trainer needs vLLM for rollouts and cannot run on a CPU."
        )


def versions() -> dict[str, str]:
    out = {}
    for dist in VERSION_DISTS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def metrics_log_path(ctx: Any) -> Path:
    """verl's `file` logger truncates its file when it opens it, so every attempt gets its own (reference §4)."""
    return ctx.local_output_dir / "verl" / f"metrics-attempt-{ctx.manifest.status.attempt}.jsonl"


def worker_env(ctx: Any) -> dict[str, str]:
    """Variables Ray's workers need: wandb's (verl passes no mode/id/dir), HF offline, where `stages` is, and the
    file logger's path (the logger lives in a Ray actor, possibly on another node)."""
    tracking = ctx.runtime.tracking
    env = {k: os.environ[k] for k in ("WANDB_MODE", "WANDB_DIR", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                                       "TRANSFORMERS_OFFLINE", "HF_HOME") if k in os.environ}
    env.setdefault("WANDB_MODE", tracking.mode if tracking.wandb else "disabled")
    env["WANDB_DIR"] = env.get("WANDB_DIR") or str(ctx.local_output_dir)
    env["WANDB_RUN_ID"] = wandb_run_id(ctx.manifest.run_id, ctx.manifest.provenance.spec_hash)
    env["WANDB_RESUME"] = "allow"
    if tracking.entity:
        env["WANDB_ENTITY"] = tracking.entity
    if tracking.group:
        env["WANDB_RUN_GROUP"] = tracking.group
    env["VERL_FILE_LOGGER_PATH"] = str(metrics_log_path(ctx).resolve())
    package_root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    return env


def slurm_cpus() -> int | None:
    for var in ("SLURM_CPUS_ON_NODE", "SLURM_CPUS_PER_TASK"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return None


def last_logged_step(path: Path) -> int:
    records = read_jsonl(path)
    return int(records[-1].get("step", 0)) if records else 0


def run_script(ctx: Any, script: Path, overrides: list[str], env_vars: dict[str, str], total_steps: int,
               what: str = "verl") -> None:
    """Run the launcher ``script`` with the overrides until it ends; raise ``Preempted`` on a stop request (naming
    the last checkpoint verl finished), ``RuntimeError`` naming the log on failure."""
    metrics_log = metrics_log_path(ctx)
    log_path = ctx.local_output_dir / "logs" / f"verl-attempt-{ctx.manifest.status.attempt}.log"
    env = child_environment({**env_vars, "VERL_FILE_LOGGER_PATH": str(metrics_log)})

    def report() -> None:
        step = last_logged_step(metrics_log)
        ctx.report(step / total_steps, f"step {step}/{total_steps}")

    code = run_group(ctx, ["bash", str(script), *overrides], env, log_path, cwd=script.parent, on_poll=report)
    if ctx.stop_requested:  # the signal was forwarded to the group; verl saves nothing on it
        step = finished_step(ctx.checkpoint_dir)
        if step:  # verl logs a step's metrics after its checkpoint: the signal may land between the two
            ctx.report(step / total_steps, f"step {step}/{total_steps} (checkpoint)", force=True)
        raise ctx.preempt(str(step_dir(ctx.checkpoint_dir, step)) if step else None)
    if code != 0:
        raise RuntimeError(f"{what} exited with code {code}; see {log_path}")


def train_to(ctx: Any, steps: int, start: Callable[[], None]) -> None:
    """Run ``start`` (the launcher) unless verl's tracker already names the final step, then insist that it does:
    verl's exit code 0 alone is never trusted (verl reference §2.6, §3.6)."""
    done = finished_step(ctx.checkpoint_dir)
    if done is None or done < steps:
        start()
        done = finished_step(ctx.checkpoint_dir)
    if done != steps:
        raise RuntimeError(
            f"verl exited 0 but its last checkpoint is step {done}, not the final step {steps}: it stopped early "
            "(see the verl log); refusing to publish an unfinished model"
        )
