"""Parameters of the evaluator. Tiers follow the methods reference §7: A (log-likelihood multiple choice) on every
checkpoint, B (generative) every few checkpoints, C (expensive) on final checkpoints. Greedy decoding for
sample-level forgetting; a separate sampled run for diversity. Thinking off unless the study says otherwise.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stages.core.common_params import EnvId, Sampling
from stages.core.model_base import StrictModel


def _greedy() -> Sampling:
    return Sampling(temperature=0.0, top_p=1.0, max_new_tokens=1024)


def _diverse() -> Sampling:
    return Sampling(temperature=1.0, top_p=1.0, max_new_tokens=512)


class EvaluatorParams(StrictModel):
    suite: Literal["forgetting", "safety", "policy", "target", "all"] = Field(
        "forgetting", description="Which part of the profile to compute."
    )
    tiers: list[Literal["A", "B", "C"]] = Field(default_factory=lambda: ["A"], description="lm-eval task tiers.")
    tasks: list[str] | None = Field(None, description="Explicit lm-eval task names (overrides tiers).")
    limit: int | None = Field(None, ge=1, description="Items per task (the first N of the pinned subset).")
    samples_file: str | None = Field(None, description="JSON {task: [indices]} pinning the same items everywhere.")
    target_env_id: EnvId | None = Field(None, description="The domain's eval env for the target suite.")
    pass_k: list[int] = Field(default_factory=lambda: [1], description="k values for pass@k on the target env.")
    target_samples: int = Field(1, ge=1, le=1024, description="Samples per target prompt (>= max pass_k).")
    greedy: Sampling = Field(default_factory=_greedy)
    diversity_sampling: Sampling = Field(default_factory=_diverse)
    diversity_samples: int = Field(8, ge=2, le=256, description="Samples per prompt for Self-BLEU/distinct-n.")
    ece_bins: int = Field(15, ge=2, le=1000, description="Equal-width bins for ECE.")
    batch_size: int = Field(8, ge=1, le=4096, description="Batch size for the backend.")
    refusal_classifier: Literal["string-match", "judge"] = Field(
        "string-match", description="How XSTest/HarmBench refusals are classified."
    )
    harmbench_classifier: str | None = Field(
        None, description="Local path of a HarmBench classifier; None falls back to refusal-based ASR (labelled)."
    )
    max_safety_items: int | None = Field(None, ge=1, description="Cap on safety prompts per benchmark.")
