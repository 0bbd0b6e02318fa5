"""Parameters of the collector. Sizes (~10k items per domain in the plan) are parameters, not constants."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stages.core.common_params import EnvId, Sampling
from stages.core.model_base import StrictModel
from stages.envs.sandbox.gate import UNISOLATED_CODE_HELP


class OpenAIEndpoint(StrictModel):
    """An OpenAI-compatible endpoint (a vLLM server or a hosted API) for 32B/70B teachers when GPUs are short."""

    base_url: str = Field("http://127.0.0.1:8000/v1", description="Endpoint base URL.")
    model: str = Field("teacher", description="Model name the endpoint serves.")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Name of the environment variable holding the key (never the key itself)."
    )
    max_concurrency: int = Field(16, ge=1, le=1024, description="Requests in flight at once.")
    max_retries: int = Field(6, ge=0, le=50, description="Retries on 429/5xx with exponential backoff.")
    timeout_s: float = Field(600.0, gt=0, le=7200, description="Per-request timeout in seconds.")


class CollectorParams(StrictModel):
    mode: Literal["ground-truth", "generate", "prompts", "merge"] = Field(
        "ground-truth",
        description="ground-truth: SFT targets from the dataset, no model; generate: sample a model and grade; "
        "prompts: export prompts with ground truth for GRPO/SPIN/π-Distill; merge: join shard runs' "
        "trajectories (inputs named freely, kind trajectories) into one set of outputs.",
    )
    env_id: EnvId = Field("math:GSM8K", description="GEM environment id.")
    split: str | None = Field(None, description="Dataset split; None takes the env's registered split.")
    start: int = Field(0, ge=0, description="First item index (after the seeded shuffle) of this shard.")
    stop: int | None = Field(None, ge=1, description="One past the last item index of this shard; None = all.")
    max_items: int | None = Field(None, ge=1, le=10_000_000, description="Cap on the number of items (~10k).")
    shuffle: bool = Field(True, description="Shuffle item order with runtime.seed before slicing.")
    n_samples: int = Field(1, ge=1, le=1024, description="Samples per prompt in generate mode.")
    sampling: Sampling = Field(default_factory=Sampling)
    keep: Literal["first", "all", "best_k"] = Field(
        "first", description="Which correct samples of a prompt become SFT rows (deduplicated)."
    )
    keep_k: int = Field(1, ge=1, le=1024, description="k for keep=best_k (shortest correct responses first).")
    sft_correct_only: bool = Field(
        True,
        description="Only verifier-correct responses become SFT rows (the SFT methods' rule). False lets a pipeline "
        "smoke test with an untrained tiny teacher produce rows; it is recorded in stats and never for research.",
    )
    template: str = Field("qwen3-v1", description="Version of the project's prompt templates (stages.envs).")
    batch_size: int = Field(
        64, ge=1, le=100_000,
        description="Prompts per generation batch. Sampling is seeded per batch of global positions, so shards "
        "whose start is a multiple of batch_size reproduce an unsharded run exactly.",
    )
    teacher_id: str | None = Field(None, description="Label of the model in records (e.g. Qwen/Qwen3-32B).")
    openai: OpenAIEndpoint | None = Field(None, description="Endpoint settings for runtime.engine = openai.")
    allow_unisolated_code: bool = Field(False, description=UNISOLATED_CODE_HELP)

    @model_validator(mode="after")
    def _range(self) -> CollectorParams:
        if self.stop is not None and self.stop <= self.start:
            raise ValueError("`stop` must be greater than `start`")
        return self
