"""Checks run before anything is written (the lifecycle's preflight hook): bad input exits 2 with nothing written.

Why here: a prompts file in the wrong schema or without privileged information, or a prompt set too small for one
rollout batch after the held-out slice, would otherwise surface only after the model loaded (minutes on a GPU
node). Parameter bounds (alpha in [0, 1], beta >= 0, batch shapes) are the params model's; what needs the input
files or the allocation is checked here, so ``study check`` catches it when the study is planned, not after a
queue wait. The native engine runs in one process (a CPU or one GPU) and samples with transformers; several GPUs
or nodes are the verl engine's (``verl_rules``: batch shapes over the GPUs, settings verl has no counterpart for),
whose overrides are then composed against verl's real config and checked by verl's own ``validate_config`` where
verl is installed (so ``validate`` still works on a login node).
"""

from __future__ import annotations

import math
from typing import Any

from stages.core.errors import InputError, ManifestError, NotImplementedYet
from stages.core.stage import ResolvedInput
from stages.pi_distill.prompts import read_prompts


def engine_of(spec: Any) -> str:
    from stages.pi_distill.stage import STAGE

    return spec.runtime.engine or STAGE.default_engine()


def check_unbuilt(params: Any, resources: Any, engine: str = "native") -> None:
    """The native engine's limits (the verl engine has none of these)."""
    if engine != "native":
        return
    if params.generation_backend != "hf":
        raise NotImplementedYet("pi-distill with the vllm generation backend on the native engine (needs a "
                                "stages.lm vLLM backend that takes updated weights between steps); engine verl "
                                "samples with vLLM")
    if resources.nodes > 1 or resources.gpus_per_node > 1:
        raise NotImplementedYet(
            f"pi-distill's native engine on {resources.nodes} node(s) x {resources.gpus_per_node} GPUs (it runs "
            "one process: a CPU or one GPU): use runtime.engine verl for several GPUs or nodes")


def _compose_check(spec: Any, inputs: dict[str, ResolvedInput]) -> None:
    """The overrides this manifest would produce, composed and validated by verl (where verl is installed)."""
    from stages.lm.verl.config import compose_and_validate_ppo, verl_installed
    from stages.lm.verl.ppo_overrides import VerlJob, ppo_steps
    from stages.pi_distill.verl_overrides import build_overrides

    if not verl_installed():
        return
    p, res = spec.params, spec.resources
    steps, epochs = ppo_steps(p.prompts_per_step, p.prompts_per_step, p.epochs, p.max_steps)
    job = VerlJob(model_path=str(inputs["model"].path), train_files="/preflight/data/train.parquet",
                  val_files="/preflight/data/val.parquet", output_dir="/preflight",
                  reward_path="/preflight/verl_reward.py", nnodes=res.nodes, gpus_per_node=res.gpus_per_node,
                  cpus=res.cpus_per_task, seed=spec.runtime.seed, thinking=spec.runtime.thinking,
                  total_steps=steps, total_epochs=epochs)
    compose_and_validate_ppo(build_overrides(p, job))


def preflight(spec: Any, inputs: dict[str, ResolvedInput]) -> None:
    p = spec.params
    engine = engine_of(spec)
    check_unbuilt(p, spec.resources, engine)
    if engine == "verl":
        from stages.pi_distill.verl_rules import verl_problems

        problems = verl_problems(p, spec.resources.nodes, spec.resources.gpus_per_node)
        if problems:
            raise ManifestError("; ".join(problems), "$.spec")
    folder = inputs["model"].path
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder} is not a Hugging Face model folder (no config.json)", "$.spec.inputs.model")
    if engine == "verl":
        _compose_check(spec, inputs)
    if not inputs["prompts"].ready:  # at plan time the collector has not written it yet
        return
    rows = read_prompts(inputs["prompts"].path, p.privileged_source, p.privileged_template)
    held = max(1, math.ceil(p.heldout_fraction * len(rows)))
    if len(rows) - held < p.prompts_per_step:
        raise InputError(
            f"the prompt set has {len(rows)} prompts; with {held} held out for the student's evaluation "
            f"(heldout_fraction {p.heldout_fraction}) fewer than prompts_per_step {p.prompts_per_step} remain to "
            "train on: lower prompts_per_step or heldout_fraction, or give more prompts", "$.spec.params")
