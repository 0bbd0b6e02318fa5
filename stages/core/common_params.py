"""Parameter blocks shared by several stages, so that a setting that means the same thing has the same name and
the same default everywhere (a study can switch engines or methods without rewriting manifests).

Defaults come from the methods reference: full fine-tuning, a fixed thinking mode, and per-method learning rates
set by each stage.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stages.core.model_base import StrictModel

EnvId = Literal[
    "math:GSM8K",
    "eval:MATH500",
    "code:CodeContest",
    "eval:CodeContest",
    "qa:NaturalQuestions",
    "eval:NaturalQuestions",
]
ENV_IDS: tuple[str, ...] = EnvId.__args__  # type: ignore[attr-defined]


class Sampling(StrictModel):
    """How responses are sampled."""

    temperature: float = Field(1.0, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    top_k: int = Field(-1, ge=-1, le=100000, description="Top-k cut-off; -1 disables it.")
    max_new_tokens: int = Field(1024, ge=1, le=65536, description="Generation budget per response, in tokens.")


class Lora(StrictModel):
    """LoRA is one study-level switch applied to every method alike; rank 0 means full fine-tuning (the default)."""

    rank: int = Field(0, ge=0, le=1024, description="LoRA rank; 0 = full fine-tuning.")
    alpha: int = Field(16, ge=1, le=4096, description="LoRA alpha.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="LoRA dropout.")
    target_modules: str = Field("all-linear", description="Modules to adapt (peft's `all-linear` or a comma list).")


class Optim(StrictModel):
    """AdamW with warm-up and a decay schedule, identical for the native engine and verl."""

    lr: float = Field(1e-5, gt=0.0, le=1e-2, description="Peak learning rate.")
    schedule: Literal["cosine", "linear", "constant"] = Field("cosine", description="Decay after warm-up.")
    warmup_ratio: float = Field(0.03, ge=0.0, le=0.5, description="Fraction of steps spent warming up.")
    weight_decay: float = Field(0.01, ge=0.0, le=1.0, description="AdamW weight decay.")
    grad_clip: float = Field(1.0, gt=0.0, le=100.0, description="Global gradient-norm clip.")
    beta1: float = Field(0.9, ge=0.0, lt=1.0, description="AdamW beta1.")
    beta2: float = Field(0.999, ge=0.0, lt=1.0, description="AdamW beta2.")


class Precision(StrictModel):
    bf16: bool = Field(True, description="bf16 autocast with fp32 master weights on GPU (CPU always uses fp32).")
    activation_checkpointing: bool = Field(True, description="Recompute activations to save memory.")


class NativeEngineOptions(StrictModel):
    """What every stage that trains on the native engine under torchrun sets alike."""

    grad_sync: Literal["auto", "every_micro_batch", "last_micro_batch"] = Field(
        "auto",
        description="Several GPUs: reduce-scatter gradients after every micro-batch (memory-safe, 8-14B) or once per "
        "step with parameters kept gathered (about 14% faster for 1.7B on 2 H100s, about 6 bytes/parameter more per "
        "GPU). auto = once per step on one GPU, every micro-batch under torchrun.",
    )
    optimizer_offload: bool = Field(
        False,
        description="Keep AdamW's moments (8 bytes/parameter, sharded over the GPUs) in CPU memory except during the "
        "optimizer step: the switch that fits 14B full fine-tuning on one node of 4 x 80 GB; costs a copy each way "
        "per step.",
    )
