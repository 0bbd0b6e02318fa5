"""Parameters of π-Distill (and the same paper's OPSD, one switch away).

Defaults follow the methods reference §5 (the paper's repo defaults and the single-turn instantiation): α 0.5 (the
paper's most stable mix), β 0.1, lr 1e-6 constant, clip 0.2 for the teacher and the student, group of 4 teacher
samples per prompt, 2 update passes per rollout batch, temperature 0.7, zero-variance groups dropped.

Names shared with the other trainers (``optim``, ``lora``, ``precision``, ``sampling``, ``group_size``,
``prompts_per_step``, ``mini_batch_size``, ``ppo_epochs``, ``epochs``, ``max_steps``, ``clip_ratio``,
``max_prompt_length``, ``micro_batch_tokens``, ``drop_zero_variance_groups``, ``save_every_steps``,
``keep_checkpoints``, ``log_rollouts_every_steps``, ``generation_backend``, ``generation_batch_size``) mean the same
thing there. ``micro_batch_tokens``, ``generation_backend`` and ``generation_batch_size`` are the native engine's;
the ``verl`` block is the verl engine's (vLLM rollouts, FSDP, Ray; see ``verl_overrides``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stages.core.common_params import Lora, Optim, Precision, Sampling
from stages.core.model_base import StrictModel
from stages.envs.sandbox.gate import UNISOLATED_CODE_HELP
from stages.lm.verl.options import VerlOptions


def _optim() -> Optim:
    return Optim(lr=1e-6, schedule="constant", warmup_ratio=0.01, weight_decay=0.01)


def _sampling() -> Sampling:
    return Sampling(temperature=0.7, top_p=1.0, max_new_tokens=2048)


class PiDistillVerl(VerlOptions):
    """The verl engine's settings (``stages.lm.verl.options``) and the actor update's micro-batch."""

    micro_batch_size_per_gpu: int = Field(
        4, ge=1, le=4096,
        description="Rows per forward/backward per GPU in the actor update (a teacher row and its student twin "
        "are two rows).",
    )


class PiDistillParams(StrictModel):
    variant: Literal["pi-distill", "opsd"] = Field(
        "pi-distill",
        description="pi-distill: the teacher (prompt + privileged information) samples, and the objective mixes its "
        "KL-penalised reward term with the student's importance-weighted term by alpha. opsd: the student samples "
        "and is trained by GRPO on the reward shaped by the reverse KL to the privileged teacher (alpha and "
        "student_clip_ratio are unused).",
    )
    alpha: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Mix alpha * teacher term + (1 - alpha) * student term, in [0, 1]: 1 = teacher only, "
        "0 = student only (the paper's ablations), 0.5 = the paper's most stable choice.",
    )
    beta: float = Field(
        0.1, ge=0.0, le=100.0,
        description="Weight (>= 0) of the KL shaping: the advantage becomes A - beta * sum over the response of "
        "(log pi_sampler - log pi_other view); 0 turns the KL term off.",
    )
    group_size: int = Field(4, ge=2, le=1024, description="Samples per prompt (GRPO's G).")
    prompts_per_step: int = Field(32, ge=1, le=65536, description="Prompts per rollout batch.")
    mini_batch_size: int | None = Field(
        None, ge=1, le=65536,
        description="Prompts per optimizer step; None = all prompts of the rollout batch in one step.",
    )
    ppo_epochs: int = Field(2, ge=1, le=16, description="Update passes over each rollout batch (the repo's 2).")
    epochs: float = Field(1.0, gt=0, le=1000, description="Passes over the training prompts.")
    max_steps: int | None = Field(None, ge=1, description="Run exactly this many rollout steps (overrides epochs).")
    clip_ratio: float = Field(0.2, gt=0.0, le=1.0, description="PPO clip epsilon of the sampled view's term.")
    student_clip_ratio: float = Field(0.2, gt=0.0, le=1.0, description="Clip of the student's importance ratio.")
    allow_unisolated_code: bool = Field(False, description=UNISOLATED_CODE_HELP)
    max_prompt_length: int = Field(
        2048, ge=16, le=131072,
        description="Longest teacher prompt (prompt + privileged information) in tokens; longer rows are left "
        "out and counted.",
    )
    sampling: Sampling = Field(default_factory=_sampling)
    privileged_source: Literal["reference_or_answer", "reference_solution", "answer"] = Field(
        "reference_or_answer",
        description="The privileged information: the row's `extra_info.reference_solution`, else its final answer "
        "(math answer, QA aliases; NQ rows have no solution); `reference_solution` refuses rows without one; "
        "`answer` always shows the answer only. Code rows need a reference solution.",
    )
    privileged_template: Literal["v1"] = Field(
        "v1", description="Versioned template that adds the privileged information to the teacher's prompt."
    )
    heldout_fraction: float = Field(
        0.05, gt=0.0, le=0.5,
        description="Share of prompts (at least one) kept out of training to measure the student without the "
        "privileged information.",
    )
    student_eval_prompts: int = Field(
        8, ge=1, le=65536,
        description="Held-out prompts the student answers (one sample each) after every step: native, the next "
        "slice of the held-out set in rotation; verl, the same first prompts of the held-out set every step.",
    )
    drop_zero_variance_groups: bool = Field(
        True, description="Leave groups whose rewards are all equal out of the update (and count them)."
    )
    micro_batch_tokens: int = Field(
        16384, ge=64, le=1_048_576,
        description="Token budget of one forward pass; a teacher/student pair is never split, so it must be >= "
        "2 x (max_prompt_length + sampling.max_new_tokens).",
    )
    generation_backend: Literal["hf", "vllm"] = Field(
        "hf", description="How the training weights sample: transformers `generate` (hf) or vLLM."
    )
    generation_batch_size: int = Field(64, ge=1, le=65536, description="Sequences per generate call (hf).")
    optim: Optim = Field(default_factory=_optim)
    lora: Lora = Field(default_factory=Lora)
    precision: Precision = Field(default_factory=Precision)
    save_every_steps: int = Field(20, ge=1, le=1_000_000, description="Checkpoint cadence in rollout steps.")
    keep_checkpoints: int = Field(2, ge=1, le=100, description="How many recent checkpoints to keep.")
    log_rollouts_every_steps: int = Field(10, ge=1, description="Write sampled rollouts every this many steps.")
    verl: PiDistillVerl = Field(default_factory=PiDistillVerl)

    @model_validator(mode="after")
    def _shapes(self) -> PiDistillParams:
        if self.mini_batch_size is not None:
            if self.mini_batch_size > self.prompts_per_step:
                raise ValueError("`mini_batch_size` cannot exceed `prompts_per_step`")
            if self.prompts_per_step % self.mini_batch_size:
                raise ValueError("`prompts_per_step` must be a multiple of `mini_batch_size`")
        pair = 2 * self.max_length
        if self.micro_batch_tokens < pair:
            raise ValueError(
                f"`micro_batch_tokens` ({self.micro_batch_tokens}) must be >= 2 x (max_prompt_length + "
                f"sampling.max_new_tokens) = {pair}: a teacher/student pair shares one forward pass"
            )
        return self

    @property
    def max_length(self) -> int:
        """Longest training sequence: a teacher prompt plus a full response."""
        return self.max_prompt_length + self.sampling.max_new_tokens

    @property
    def updates_per_step(self) -> int:
        per = self.mini_batch_size or self.prompts_per_step
        return (self.prompts_per_step // per) * self.ppo_epochs
