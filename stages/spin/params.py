"""Parameters of SPIN. Defaults from the paper (methods reference §3; uclaml/SPIN configs and the released
iteration models' cards): beta 0.1, lr 5e-7 with a linear schedule and warm-up 0.1, 2 epochs per iteration,
global batch 64, max length 1024 (prompt 512), one sample per prompt at temperature 1.0 and top-p 1.0, this and the
previous iteration's pairs, and faithful SPIN (a correct own sample is still the rejected side).

Two deliberate departures, the same for every method of the study: the optimizer is the shared engine's AdamW (the
paper used RMSprop), and the generation budget is the domain's (``sampling.max_new_tokens``; the paper used 256).
Names shared with the other trainers (``optim``, ``lora``, ``precision``, ``sampling``, ``global_batch_size``,
``micro_batch_tokens``, ``max_length``, ``max_prompt_length``, ``save_every_steps``, ``keep_checkpoints``,
``native.grad_sync``) mean the same thing there.

Several GPUs and nodes are ``resources``, not params: generation runs on the batch node's GPUs (``vllm``), the
reference and training phases under torchrun over every GPU of every node (``native``). ``global_batch_size`` is
split over the ranks, so a run gives the same pairs, reference log-probs, losses and weights on any number of GPUs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from stages.core.common_params import Lora, NativeEngineOptions, Optim, Precision, Sampling
from stages.core.model_base import StrictModel
from stages.envs.sandbox.gate import UNISOLATED_CODE_HELP


class VLLMOptions(StrictModel):
    """The vLLM server that generates each iteration's samples (``generation_backend`` vllm, or auto on GPUs)."""

    tensor_parallel_size: int = Field(
        1, ge=1, le=16, description="GPUs per model replica (1 fits Qwen3 up to 14B in bf16 on an 80 GB card)."
    )
    data_parallel_size: int = Field(
        0, ge=0, le=64,
        description="Replicas behind the one server; 0 = every GPU of the batch node / tensor_parallel_size. "
        "Generation runs on the batch node only, also when training spans several nodes.",
    )
    gpu_memory_utilization: float = Field(
        0.85, gt=0.0, le=0.98, description="Share of each GPU's memory vLLM may take (it has the GPUs to itself)."
    )
    max_num_seqs: int = Field(256, ge=1, le=4096, description="Sequences a replica decodes at once.")
    startup_timeout_minutes: float = Field(
        20.0, gt=0, le=240, description="How long the server may take to load the model before the run fails."
    )


class NativeOptions(NativeEngineOptions):
    """The native engine's settings for the reference and training phases (FSDP2 under torchrun on several GPUs)."""


def _optim() -> Optim:
    return Optim(lr=5e-7, schedule="linear", warmup_ratio=0.1, weight_decay=0.0)


def _sampling() -> Sampling:
    return Sampling(temperature=1.0, top_p=1.0, max_new_tokens=256)


class SPINParams(StrictModel):
    iterations: int = Field(3, ge=1, le=20, description="Self-play iterations (the paper ran 4: 0-3).")
    beta: float = Field(0.1, gt=0.0, le=100.0, description="SPIN/DPO temperature beta (> 0).")
    loss: Literal["sigmoid", "hinge"] = Field("sigmoid", description="-log σ(β·margin), or relu(1 - β·margin).")
    epochs_per_iteration: float = Field(
        2.0, gt=0, le=100, description="Passes over an iteration's pairs (fractions allowed; the paper: 2)."
    )
    global_batch_size: int = Field(64, ge=1, le=65536, description="Pairs per optimizer step.")
    micro_batch_tokens: int = Field(
        8192, ge=64, le=1_048_576,
        description="Token budget of one forward pass; a pair (chosen + rejected) is never split, so it must be "
        ">= 2 x max_length.",
    )
    max_length: int = Field(1024, ge=16, le=131072, description="Longest prompt + response in tokens.")
    max_prompt_length: int = Field(
        512, ge=8, le=131072, description="Longest prompt in tokens; longer prompts are left out and counted."
    )
    sampling: Sampling = Field(default_factory=_sampling)
    chosen_source: Literal["reference_or_templated", "reference_solution"] = Field(
        "reference_or_templated",
        description="The chosen (ground-truth) response: the row's reference solution, else a templated "
        "answer-only response built from the ground truth (as the collector's GT-SFT targets; QA rows have no "
        "solution); `reference_solution` refuses rows without one.",
    )
    keep_previous_iteration: bool = Field(True, description="Train on this and the previous iteration's pairs.")
    allow_unisolated_code: bool = Field(False, description=UNISOLATED_CODE_HELP)
    correct_sample_policy: Literal["keep", "drop"] = Field(
        "keep", description="keep = faithful SPIN (push down a correct own sample too); drop = skip such pairs."
    )
    generation_backend: Literal["auto", "hf", "vllm"] = Field(
        "auto", description="How the model samples: transformers `generate` in the stage (hf), or a vLLM server "
        "started on each iteration's start model and stopped before training (vllm; the stage's Python or "
        "$FLLM_VLLM_PYTHON runs it, prompts go as token ids); auto = vllm on a CUDA machine with vllm installed, "
        "else hf. The choice is recorded and kept on resume.",
    )
    vllm: VLLMOptions = Field(default_factory=VLLMOptions)
    generation_batch_size: int = Field(
        256, ge=1, le=1_000_000,
        description="Prompts per generation chunk. Each chunk is seeded from (seed, iteration, chunk) and "
        "checkpointed when written, so a resumed run reproduces the same samples.",
    )
    save_iteration_models: bool = Field(False, description="Export every iteration's model, not just the last.")
    optim: Optim = Field(default_factory=_optim)
    lora: Lora = Field(default_factory=Lora)
    precision: Precision = Field(default_factory=Precision)
    native: NativeOptions = Field(
        default_factory=NativeOptions,
        description="Several GPUs (resources.gpus_per_node x nodes): the reference log-probs and training run under "
        "torchrun over all of them (FSDP2; srun with a c10d rendezvous on several nodes), with the same pairs, "
        "reference log-probs, losses and weights as one process; precision.activation_checkpointing and "
        "native.optimizer_offload are the memory switches for 8-14B.",
    )
    save_every_steps: int = Field(50, ge=1, le=1_000_000, description="Checkpoint cadence within an iteration.")
    keep_checkpoints: int = Field(2, ge=1, le=100, description="How many recent checkpoints to keep.")

    @field_validator("optim", "sampling", mode="before")
    @classmethod
    def _partial_blocks_keep_spin_defaults(cls, value: object, info: ValidationInfo) -> object:
        """``optim: {lr: 1e-6}`` changes the lr only: the rest stays SPIN's (linear, warm-up 0.1, no decay), not the
        shared block's generic defaults."""
        if isinstance(value, dict):
            base = _optim() if info.field_name == "optim" else _sampling()
            return {**base.model_dump(), **value}
        return value

    @model_validator(mode="after")
    def _lengths(self) -> SPINParams:
        if self.max_prompt_length + self.sampling.max_new_tokens > self.max_length:
            raise ValueError(
                f"`max_prompt_length` ({self.max_prompt_length}) + `sampling.max_new_tokens` "
                f"({self.sampling.max_new_tokens}) must be <= `max_length` ({self.max_length}), so that every "
                "own sample fits a training sequence"
            )
        if self.micro_batch_tokens < 2 * self.max_length:
            raise ValueError(
                f"`micro_batch_tokens` ({self.micro_batch_tokens}) must be >= 2 x `max_length` "
                f"({2 * self.max_length}): a pair's chosen and rejected sequences share one forward pass"
            )
        return self
