"""Checks run by the lifecycle before anything is written (``validate`` and every run): exit 2 on bad input.

Why before: a job that waits hours for GPUs must not fail on its first step because the data has no ``messages``
column, every row is longer than ``max_length`` or the batch does not divide across the GPUs. The data checks
read the parquet and count tokens with the model's tokenizer (seconds, even for large sets); the engine checks
refuse settings one engine cannot honour, and for verl the overrides are composed against verl's real config, so a
bad ``verl.extra_overrides`` entry fails here too (skipped where verl is not installed, e.g. a login node).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.core.errors import InputError
from stages.sft_trainer.params import SFTParams
from stages.sft_trainer.prepare import Prepared, analyse, check_batch, requested_world


def engine_of(spec: Any) -> str:
    from stages.sft_trainer.stage import STAGE

    return spec.runtime.engine or STAGE.default_engine()


def check_engine_settings(spec: Any, engine: str) -> None:
    params: SFTParams = spec.params
    if engine == "verl":
        if params.optim.schedule == "linear":
            raise InputError("verl's FSDP optimizer offers only `cosine` and `constant` schedules",
                             "$.spec.params.optim.schedule")
        if params.lora.rank and params.lora.dropout:
            raise InputError("verl's SFT trainer has no LoRA dropout setting: set lora.dropout to 0",
                             "$.spec.params.lora.dropout")
        for key, unset in (("grad_sync", "auto"), ("optimizer_offload", False)):
            if getattr(params.native, key) != unset:
                raise InputError("the `native` block applies only to engine native; verl cannot honour it (verl's "
                                 "own switches are in the `verl` block)", f"$.spec.params.native.{key}")
    if engine == "native":
        verl = params.verl
        if verl.param_offload or verl.optimizer_offload or verl.extra_overrides:
            raise InputError("the `verl` block applies only to engine verl; the native engine cannot honour it",
                             "$.spec.params.verl")
        if spec.resources.nodes > 1:
            raise InputError("the native engine trains on one node (its GPUs under torchrun); use engine verl for "
                             "several nodes", "$.spec.resources.nodes")


def compose_check(spec: Any, inputs: dict[str, Any], prepared: Prepared) -> None:
    """Compose the overrides this manifest would produce against verl's config (no verl import, about 1 s)."""
    from stages.core import storage
    from stages.sft_trainer import verl_config
    from stages.sft_trainer.verl_job import make_job
    from stages.sft_trainer.verl_overrides import build_overrides

    if not verl_config.verl_installed():
        return  # e.g. `validate` on a login node: the run checks again where verl must be installed
    verl_config.check_install()
    out = Path(storage.expand(spec.output_dir))
    job = make_job(spec, inputs, prepared, out, attn_implementation="sdpa")
    verl_config.compose(build_overrides(spec.params, job))


def plan_time_estimate(spec: Any) -> Prepared:
    """A stand-in for the data's plan while the collector has not written it (``sft-trainer check``): enough steps
    for the composition check, which validates verl's config keys and shapes, not the step counts."""
    from stages.sft_trainer.selection import Selection

    params: SFTParams = spec.params
    world = requested_world(spec.resources)
    steps = params.max_steps or 2
    val = [0] if params.val_fraction > 0 else []
    return Prepared(rows=[], selection=Selection(train=[0], val=val, dropped=0, truncated=0), world=world,
                    steps_per_epoch=steps, total_steps=steps)


def preflight(spec: Any, inputs: dict[str, Any]) -> None:
    engine = engine_of(spec)
    check_engine_settings(spec, engine)
    if inputs["data"].ready:
        prepared = analyse(spec, inputs, requested_world(spec.resources))
    else:  # plan time: the batch arithmetic now, the data checks when the collector has run
        check_batch(spec.params, requested_world(spec.resources))
        prepared = plan_time_estimate(spec)
    if engine == "verl":
        compose_check(spec, inputs, prepared)
