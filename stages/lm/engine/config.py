"""The training configuration every method shares.

Why a single dataclass: the forgetting comparison needs the same optimiser, schedule, precision, packing and
checkpointing for all six methods, so these knobs live in one place and each stage only chooses values. It is a
plain dataclass (not pydantic) so the engine also runs on machines that have only torch and transformers (the
GPU box); ``from_dict`` is closed (unknown keys are errors) like the manifest schema.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from stages.lm.errors import LMInputError
from stages.lm.loading import DEFAULT_LORA_TARGETS, LoraSettings

Schedule = Literal["cosine", "linear", "constant"]
Precision = Literal["auto", "bf16-mixed", "bf16", "fp32"]
Sharding = Literal["auto", "on", "off"]
GradSync = Literal["auto", "every_micro_batch", "last_micro_batch"]


class TrainConfigError(LMInputError):
    """A training configuration value out of range or inconsistent with another."""


@dataclass
class TrainConfig:
    """Optimiser, schedule, batching, precision and checkpointing of one training run.

    Batching: a *group* is a list of sequences that must share a micro-batch (one SFT example; a DPO pair; a
    pi-Distill teacher/student pair). An optimizer step consumes ``global_batch_groups`` groups, or groups up to
    ``global_batch_tokens`` tokens when that is set. Each forward pass packs groups into at most
    ``micro_batch_tokens`` tokens; gradient accumulation over micro-batches is implicit.

    Precision ``bf16-mixed`` (the GPU default) keeps fp32 master weights and optimizer state and computes in
    bf16: through FSDP2's mixed-precision policy (``fsdp`` auto/on, also on a single GPU) or autocast (``off``).

    ``grad_sync`` (FSDP2): ``every_micro_batch`` reduce-scatters gradients after each micro-batch, so each rank holds
    only its shard (the memory-safe choice for 8-14B models on several GPUs); ``last_micro_batch`` keeps parameters
    gathered and fp32 gradients unreduced until a step's last micro-batch: one reduction per step instead of one per
    micro-batch, for about 6 bytes per parameter more on every GPU (fine for 1.7-4B). ``auto`` is
    ``last_micro_batch`` in one process and ``every_micro_batch`` under torchrun.

    ``optimizer_offload`` (GPU): AdamW's moments (8 bytes per parameter, sharded) live in CPU memory except during
    the optimizer step, leaving that much more GPU memory for forward and backward (e.g. 14B on 4 x 80 GB).
    """

    lr: float = 1e-5
    schedule: Schedule = "cosine"
    warmup_ratio: float = 0.03
    min_lr_ratio: float = 0.0
    epochs: int = 1
    max_steps: int | None = None
    global_batch_groups: int = 8
    global_batch_tokens: int | None = None
    micro_batch_tokens: int = 8192
    max_length: int = 4096
    grad_clip: float | None = 1.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    precision: Precision = "auto"
    fsdp: Sharding = "auto"
    grad_sync: GradSync = "auto"
    optimizer_offload: bool = False
    activation_checkpointing: bool = False
    compile: bool = False
    static_shapes: bool | None = None
    logprob_chunk_tokens: int = 4096
    lora: LoraSettings | None = None
    seed: int = 0
    checkpoint_every: int = 0
    keep_last: int = 2
    log_every: int = 1
    wandb_project: str | None = None
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**{k: tuple(v) if k == "target_modules" else v for k, v in self.lora.items()})
        checks = [
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.schedule in ("cosine", "linear", "constant"), f"schedule must be cosine, linear or constant, got {self.schedule!r}"),
            (0.0 <= self.warmup_ratio < 1.0, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}"),
            (0.0 <= self.min_lr_ratio <= 1.0, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}"),
            (self.global_batch_groups >= 1, f"global_batch_groups must be >= 1, got {self.global_batch_groups}"),
            (self.global_batch_tokens is None or self.global_batch_tokens >= 1, "global_batch_tokens must be >= 1"),
            (self.max_length >= 2, f"max_length must be >= 2, got {self.max_length}"),
            (self.micro_batch_tokens >= self.max_length,
             (f"micro_batch_tokens ({self.micro_batch_tokens}) must be >= max_length ({self.max_length}) so any "
              "sequence fits one forward pass")),
            (self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be > 0 or None, got {self.grad_clip}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), f"betas must be two values in [0, 1), got {self.betas}"),
            (self.precision in ("auto", "bf16-mixed", "bf16", "fp32"), f"precision must be auto, bf16-mixed, bf16 or fp32, got {self.precision!r}"),
            (self.fsdp in ("auto", "on", "off"), f"fsdp must be auto, on or off, got {self.fsdp!r}"),
            (self.grad_sync in ("auto", "every_micro_batch", "last_micro_batch"),
             f"grad_sync must be auto, every_micro_batch or last_micro_batch, got {self.grad_sync!r}"),
            (self.logprob_chunk_tokens >= 1, "logprob_chunk_tokens must be >= 1"),
            (self.checkpoint_every >= 0, f"checkpoint_every must be >= 0 (0 = only at the end), got {self.checkpoint_every}"),
            (self.keep_last >= 1, f"keep_last must be >= 1, got {self.keep_last}"),
            (self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}"),
            (self.wandb_mode in ("offline", "online", "disabled"), f"wandb_mode must be offline, online or disabled, got {self.wandb_mode!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise TrainConfigError(f"TrainConfig: {message}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TrainConfigError(f"TrainConfig: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out


    def use_fsdp(self, device_type: str, world_size: int) -> bool:
        """FSDP2 always under torchrun; on one GPU too by default for bf16-mixed, where its mixed-precision
        policy (bf16 compute, fp32 master weights and gradient reduction) is faster than autocast."""
        if world_size > 1:
            return True
        if self.fsdp == "auto":
            return device_type == "cuda" and self.resolved_precision(device_type) == "bf16-mixed"
        return self.fsdp == "on"

    def resolved_precision(self, device_type: str) -> str:
        if self.precision == "auto":
            return "bf16-mixed" if device_type == "cuda" else "fp32"
        return self.precision


def shared_settings(optim: Any, precision: Any, lora: Any) -> dict[str, Any]:
    """The TrainConfig fields every method takes from the manifest's common blocks, mapped in one place.

    ``optim``, ``precision`` and ``lora`` are the stage params' ``Optim``, ``Precision`` and ``Lora`` blocks (read
    by attribute, so the engine needs no pydantic). LoRA rank 0 means full fine-tuning; ``target_modules`` is
    ``all-linear`` or a comma-separated list of module names.
    """
    settings = None
    if lora.rank > 0:
        names = lora.target_modules
        targets = DEFAULT_LORA_TARGETS if names == "all-linear" else tuple(t.strip() for t in names.split(",") if t.strip())
        settings = LoraSettings(r=lora.rank, alpha=lora.alpha, dropout=lora.dropout, target_modules=targets)
    return {
        "lr": optim.lr,
        "schedule": optim.schedule,
        "warmup_ratio": optim.warmup_ratio,
        "weight_decay": optim.weight_decay,
        "grad_clip": optim.grad_clip,
        "betas": (optim.beta1, optim.beta2),
        "precision": "auto" if precision.bf16 else "fp32",
        "activation_checkpointing": precision.activation_checkpointing,
        "lora": settings,
    }
