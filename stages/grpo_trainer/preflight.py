"""Checks run before anything is written (the lifecycle's preflight hook): a bad run exits 2 before any GPU time.

Why here: a prompts file in the wrong schema, a reward file that does not exist, a batch that verl cannot split
over the allocation's GPUs, or a verl override verl does not know, would otherwise surface minutes into a GPU job,
after Ray and vLLM started. Every problem found is listed in one message. The verl composition check (verl's own
``validate_config``) runs only where verl is installed, so ``validate`` still works on a login node.
"""

from __future__ import annotations

from typing import Any

from stages.core.errors import InputError, ManifestError, NotImplementedYet
from stages.core.stage import ResolvedInput
from stages.envs.sandbox.gate import WHERE as ISOLATION_WHERE
from stages.envs.sandbox.gate import grades_code, refusal
from stages.grpo_trainer.prompts import read_prompts
from stages.grpo_trainer.reward_fn import check_reward_file, project_reward_path
from stages.grpo_trainer.rules import native_problems, steps_problems, verl_problems


def _engine(spec: Any) -> str:
    from stages.grpo_trainer.stage import STAGE

    return spec.runtime.engine or STAGE.default_engine()


def _check_model(model: ResolvedInput) -> None:
    folder = model.path
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder} is not a Hugging Face model folder (no config.json)", "$.spec.inputs.model")


def preflight(spec: Any, inputs: dict[str, ResolvedInput]) -> None:
    params = spec.params
    engine = _engine(spec)
    _check_model(inputs["model"])
    # At plan time (`grpo-trainer check`) the collector has not written the prompts yet: the step arithmetic waits for
    # them, and the composition check assumes one full step's worth of prompts.
    ready = inputs["prompts"].ready
    rows = read_prompts(inputs["prompts"].path, "$.spec.inputs.prompts") if ready else []
    num_prompts = len(rows) if ready else params.prompts_per_step
    if grades_code(r.data_source for r in rows) and (why := refusal(params.allow_unisolated_code)):
        raise InputError(why, ISOLATION_WHERE)
    if "val_prompts" in inputs:
        if inputs["val_prompts"].ready:
            read_prompts(inputs["val_prompts"].path, "$.spec.inputs.val_prompts")
    elif params.val_every_steps > 0:
        raise InputError("val_every_steps > 0 needs the `val_prompts` input", "$.spec.params.val_every_steps")
    if params.reward_function.path is not None:
        check_reward_file(params.reward_function.path, params.reward_function.name)
    problems = steps_problems(num_prompts, params) if ready else []
    if engine == "verl":
        problems += verl_problems(params, spec.resources.nodes, spec.resources.gpus_per_node)
    else:
        problems += native_problems(params, spec.resources.nodes)
    if problems:
        raise ManifestError("; ".join(problems), "$.spec")
    if engine == "verl":
        _compose_check(spec, inputs, num_prompts)


def _compose_check(spec: Any, inputs: dict[str, ResolvedInput], num_prompts: int) -> None:
    """Compose the exact overrides against verl's config and run its validate_config (where verl is installed)."""
    from stages.grpo_trainer.verl_overrides import VerlJob, build_overrides, total_steps
    from stages.lm.verl.config import compose_and_validate_ppo, verl_installed

    if not verl_installed():
        return
    params = spec.params
    try:
        reward = str(params.reward_function.path or project_reward_path())
    except NotImplementedYet:
        reward = "/reward/not/installed.py"  # the run reports this; the composition does not read the file
    steps, epochs = total_steps(num_prompts, params)
    val = inputs.get("val_prompts")
    job = VerlJob(
        model_path=str(inputs["model"].path),
        train_files=str(inputs["prompts"].path) if inputs["prompts"].ready else "/pending/prompts.parquet",
        val_files=(str(val.path) if val.ready else "/pending/val_prompts.parquet") if val else None,
        output_dir="/preflight",
        reward_path=reward,
        nnodes=spec.resources.nodes,
        gpus_per_node=spec.resources.gpus_per_node,
        cpus=spec.resources.cpus_per_task,
        seed=spec.runtime.seed,
        thinking=spec.runtime.thinking,
        total_steps=steps,
        total_epochs=epochs,
    )
    compose_and_validate_ppo(build_overrides(params, job))
