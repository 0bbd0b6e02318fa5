"""From a planned manifest to what the memory and cost models read: the model's shape, the stage's params with
their defaults, and the training setup (engine, GPUs, micro-batch, checkpointing, offload, LoRA, sampling).

Why here and not in the models: each stage names its knobs its own way (``micro_batch_tokens``, verl's
``micro_batch_size_per_gpu`` x sequence length, ``native.grad_sync``, ``verl.optimizer_offload``); this file is the
one place that maps them, reading the stage's own params model so that defaults are the stage's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.study.costing.memory import Generation, TrainSetup
from stages.study.costing.shapes import ModelShape, shape_for
from stages.study.dag import PlannedRun

TRAINERS = ("sft-trainer", "grpo-trainer", "spin", "pi-distill")
SPIN_VLLM_UTILIZATION = 0.5  # spin params without a `vllm` block: stages/spin/generate.py's fixed share


def params_of(run: PlannedRun) -> Any | None:
    """The run's params validated by its stage (defaults filled in); None for other commands or invalid params
    (the stage's own check reports those)."""
    from stages.registry import BY_NAME, load_stage

    if run.command or run.stage not in BY_NAME:
        return None
    try:
        return load_stage(run.stage).params.model_validate(run.manifest["spec"]["params"])
    except Exception:
        return None


def engine_of(run: PlannedRun) -> str:
    from stages.registry import load_stage

    return run.manifest["spec"]["runtime"].get("engine") or load_stage(run.stage).default_engine()


def _folder(uri: str) -> Path | None:
    from stages.study.paths import local

    try:
        return local(uri)
    except Exception:  # an unset $SCRATCH, a remote URI: fall back to the size label
        return None


def shape_of(run: PlannedRun, names: tuple[str, ...] = ("model", "base_model")) -> ModelShape | None:
    """The shape of the run's model: the first of ``names`` given as a folder, else the run's size label."""
    inputs = run.manifest["spec"]["inputs"]
    for name in names:
        ref = inputs.get(name) or {}
        if ref.get("uri"):
            return shape_for(run.size, _folder(ref["uri"]))
    return shape_for(run.size)


def _common(run: PlannedRun, p: Any, shape: ModelShape, engine: str) -> dict[str, Any]:
    res = run.resources
    out = {
        "stage": run.stage, "engine": engine, "shape": shape,
        "gpus_per_node": int(res.get("gpus_per_node", 0)), "nodes": int(res.get("nodes", 1)),
        "activation_checkpointing": bool(p.precision.activation_checkpointing), "bf16": bool(p.precision.bf16),
        "lora_rank": int(p.lora.rank), "lora_targets": p.lora.target_modules,
    }
    block = getattr(p, engine, None)  # the engine's own params block (verl: ..., native: ...), where it has one
    offloads = tuple(k for k in ("optimizer_offload", "param_offload") if hasattr(block, k))
    out.update({k: bool(getattr(block, k)) for k in offloads}, offloads=offloads)
    if engine == "native" and hasattr(block, "grad_sync"):
        out["grad_sync"] = block.grad_sync
    return out


def _verl_rollout(run: PlannedRun, p: Any, c: dict[str, Any], seq: int) -> TrainSetup:
    """grpo-trainer and pi-distill on verl: actor micro-batches of whole sequences, colocated vLLM rollouts."""
    v = p.verl
    gen = Generation("colocated", utilization=v.rollout_gpu_memory_utilization,
                     tensor_parallel=v.rollout_tensor_parallel, seq_len=seq)
    return TrainSetup(**c, micro_tokens=v.micro_batch_size_per_gpu * seq if hasattr(v, "micro_batch_size_per_gpu")
                      else p.micro_batch_size_per_gpu * seq, min_micro_tokens=seq,
                      micro_knob="micro_batch_size_per_gpu", reference=getattr(p, "kl_coef", 0) > 0, generation=gen)


def train_setup(run: PlannedRun, p: Any | None = None, shape: ModelShape | None = None) -> TrainSetup | None:
    """The memory model's view of a trainer run on GPUs; None for CPU runs and other stages."""
    if run.stage not in TRAINERS or run.gpus < 1:
        return None
    p = p if p is not None else params_of(run)
    shape = shape or shape_of(run)
    if p is None or shape is None:
        return None
    engine = engine_of(run)
    c = _common(run, p, shape, engine)
    if run.stage == "sft-trainer":
        return TrainSetup(**c, micro_tokens=p.micro_batch_tokens, min_micro_tokens=p.max_length)
    if run.stage == "grpo-trainer":
        seq = p.max_prompt_length + p.sampling.max_new_tokens
        if engine == "verl":
            return _verl_rollout(run, p, c, seq)
        gen = Generation("inprocess", batch=p.native.generation_batch_size, seq_len=seq)
        return TrainSetup(**c, micro_tokens=p.native.micro_batch_tokens, min_micro_tokens=seq,
                          reference=p.kl_coef > 0, generation=gen)
    if run.stage == "spin":
        vllm = getattr(p, "vllm", None)
        util = vllm.gpu_memory_utilization if vllm is not None else SPIN_VLLM_UTILIZATION
        uses_vllm = p.generation_backend in ("auto", "vllm")  # auto: vLLM on a CUDA machine that has it (images do)
        gen = Generation("separate", batch=p.generation_batch_size, seq_len=p.max_length,
                         utilization=util if uses_vllm else 0.0,
                         tensor_parallel=vllm.tensor_parallel_size if vllm is not None else 1)
        return TrainSetup(**c, micro_tokens=p.micro_batch_tokens, min_micro_tokens=2 * p.max_length, generation=gen)
    if engine == "verl":  # pi-distill: a teacher row and its student twin are two rows
        return _verl_rollout(run, p, c, p.max_length)
    gen = Generation("inprocess", batch=p.generation_batch_size, seq_len=p.max_length)
    return TrainSetup(**c, micro_tokens=p.micro_batch_tokens, min_micro_tokens=2 * p.max_length, generation=gen)
