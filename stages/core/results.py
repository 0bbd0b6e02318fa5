"""The evaluator's results document (``results.json``): the contract between the evaluator and the analyzer.

One schema for every suite, versioned. Scores are long-format rows (task, metric, value) tagged with a capability
group, so the analyzer can pivot any subset into a method x domain x capability matrix; the sections for
sample-level forgetting, policy metrics, safety, target pass@k and KL are optional and present when computed.
``labels`` carry what the analyzer groups by (method, domain, start, size, seed, lr, engine), written by the
conductor into the evaluator's manifest.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stages.core.model_base import StrictModel

RESULTS_SCHEMA_ID = "forgetting-llms/eval-results/v1"

CAPABILITIES = (
    "knowledge",
    "reasoning",
    "commonsense",
    "instruction_following",
    "math",
    "code",
    "qa",
    "truthfulness",
    "safety",
    "calibration",
    "diversity",
    "target",
)


class Labels(StrictModel):
    """What the run was: the analyzer's grouping keys. Missing values stay missing, never zero."""

    study: str | None = None
    method: str | None = Field(None, description="GT-SFT, SF-SFT, CF-SFT, SELF, ON-RL, PI, or BASE for no training.")
    domain: str | None = Field(None, description="math, code or qa (None for the untrained base).")
    start: str | None = Field(None, description="BASE or SAFE starting point.")
    model_size: str | None = Field(None, description="1.7B, 4B, 8B, 14B, tiny.")
    seed: int | None = None
    lr: float | None = None
    engine: str | None = None
    base_run_id: str | None = Field(None, description="run_id of the base model's evaluation this is compared to.")


class Score(StrictModel):
    task: str
    metric: str
    value: float
    stderr: float | None = None
    n: int | None = Field(None, ge=0)
    capability: str = Field(..., description="One of CAPABILITIES (or a study-defined group).")
    tier: Literal["A", "B", "C", "target", "safety", "policy"] | None = None
    higher_is_better: bool = True


class Forgetting(StrictModel):
    """Sample-level transitions between the base's and this model's per-item correctness (methods ref §9)."""

    task: str
    n: int = Field(..., ge=0)
    forgetting: float = Field(..., description="F = #(1->0)/N")
    backward_transfer: float = Field(..., description="BT = #(0->1)/N")
    retention: float
    non_acquisition: float
    forgetting_conditional: float | None = Field(None, description="#(1->0)/#(pre=1)")
    forgetting_true: float | None = Field(None, description="chance-adjusted F (k-option MC)")
    backward_transfer_true: float | None = None
    noise_flip_rate: float | None = Field(None, description="F between two base evaluations")
    mcnemar_chi2: float | None = None
    mcnemar_p: float | None = None


class Policy(StrictModel):
    self_bleu: float | None = None
    distinct_1: float | None = None
    distinct_2: float | None = None
    distinct_3: float | None = None
    mean_length: float | None = None
    length_w1_log: float | None = Field(None, description="1-Wasserstein on log-length vs base")
    length_ks: float | None = None
    ece: float | None = None
    brier: float | None = None
    nll: float | None = None


class Safety(StrictModel):
    xstest_over_refusal: float | None = Field(None, description="Refusal rate on the 250 safe prompts.")
    xstest_under_refusal: float | None = Field(None, description="Compliance rate on the 200 unsafe prompts.")
    harmbench_asr: float | None = None
    harmbench_classifier: str | None = Field(None, description="Classifier used, or 'refusal-fallback'.")
    harmbench_by_category: dict[str, float] = Field(default_factory=dict)


class EvalResults(StrictModel):
    schema_id: Literal["forgetting-llms/eval-results/v1"] = Field(RESULTS_SCHEMA_ID, alias="schema")
    run_id: str
    model_uri: str
    model_digest: str | None = None
    labels: Labels = Field(default_factory=Labels)
    suites: list[str] = Field(default_factory=list)
    scores: list[Score] = Field(default_factory=list)
    forgetting: list[Forgetting] = Field(default_factory=list)
    policy: Policy | None = None
    safety: Safety | None = None
    kl_target: float | None = Field(None, description="E_x[KL(base || post)] on target prompts (RL's Razor).")
    item_subset_hash: dict[str, str] = Field(default_factory=dict, description="task -> hash of evaluated item ids")
    samples_dir: str | None = None
    created_at: str | None = None
