"""The evaluator's results document (``results.json``): the contract between the evaluator and the analyzer.

One schema for every suite, versioned. Scores are long-format rows (task, metric, value) tagged with a capability
group, so the analyzer can pivot any subset into a method x domain x capability matrix; the sections for
sample-level forgetting, policy metrics, safety, target pass@k and KL are optional and present when computed.
``labels`` carry what the analyzer groups by (method, domain, start, size, seed, lr, engine), written by the
conductor into the evaluator's manifest.

Compatibility rule for additions: every field of ``Forgetting``, ``Policy`` and ``Safety`` is a number (or None;
``Safety``'s two named exceptions aside), because the analyzer turns each into a column; anything else (strings,
per-task lists, breakdowns) goes in its own top-level field. Additions are optional with defaults, so documents
written before them still validate.
"""

from __future__ import annotations

from typing import Any, Literal

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

    study: str | None = Field(None, description="Name of the study the run belongs to.")
    method: str | None = Field(None, description="GT-SFT, SF-SFT, CF-SFT, SELF, ON-RL, PI, or BASE for no training.")
    domain: str | None = Field(None, description="math, code or qa (None for the untrained base).")
    start: str | None = Field(None, description="BASE or SAFE starting point.")
    model_size: str | None = Field(None, description="1.7B, 4B, 8B, 14B, tiny.")
    seed: int | None = Field(None, description="Training seed of the evaluated checkpoint.")
    lr: float | None = Field(None, description="Peak learning rate of the training run.")
    engine: str | None = Field(None, description="Training engine (native, verl ...).")
    base_run_id: str | None = Field(None, description="run_id of the base model's evaluation this is compared to.")
    target_kind: str | None = Field(
        None, description="What a ground-truth method (GT-SFT, SELF, PI) trained on: worked-solution, answer-only or "
        "missing (the staged dataset's kind; stages.envs.solutions).")


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
    n_missing: int = Field(0, ge=0, description="Items in both sets without a verdict on one side (dropped).")
    acc_pre: float | None = Field(None, description="Base accuracy over the compared items.")
    acc_post: float | None = Field(None, description="Post-trained accuracy over the compared items.")
    forgetting_chance: float | None = Field(None, description="F expected from guessing (k-option MC).")
    backward_transfer_chance: float | None = None
    forgetting_max: float | None = Field(None, description="Ceiling of F_true: max((k*acc_pre - 1)/(k - 1), 0).")
    backward_transfer_max: float | None = None
    num_choices: float | None = Field(None, description="k of the chance adjustment (mean over items).")
    forgetting_minus_noise: float | None = Field(None, description="F - noise_flip_rate.")
    mcnemar_b: int | None = Field(None, description="#(1->0)")
    mcnemar_c: int | None = Field(None, description="#(0->1)")


class Policy(StrictModel):
    self_bleu: float | None = Field(None, description="Within-prompt Self-BLEU (0-1), mean over prompts.")
    distinct_1: float | None = None
    distinct_2: float | None = None
    distinct_3: float | None = None
    mean_length: float | None = None
    length_w1_log: float | None = Field(None, description="1-Wasserstein on log-length vs base")
    length_ks: float | None = None
    ece: float | None = None
    brier: float | None = None
    nll: float | None = None
    self_bleu_across: float | None = Field(None, description="Self-BLEU (0-1) over all sampled responses together.")
    adaptive_ece: float | None = Field(None, description="ECE over equal-mass bins.")
    median_length: float | None = None
    p90_length: float | None = None
    truncation_rate: float | None = Field(None, description="Share of responses that used the whole budget.")
    diversity_responses: int | None = Field(None, ge=0, description="Sampled responses behind the diversity numbers.")


class Safety(StrictModel):
    xstest_over_refusal: float | None = Field(None, description="Refusal rate on the 250 safe prompts.")
    xstest_under_refusal: float | None = Field(None, description="Compliance rate on the 200 unsafe prompts.")
    harmbench_asr: float | None = None
    harmbench_classifier: str | None = Field(None, description="Classifier used, or 'refusal-fallback'.")
    harmbench_by_category: dict[str, float] = Field(default_factory=dict)
    xstest_partial_refusal: float | None = Field(None, description="Partial-refusal rate on the safe prompts (judge).")
    xstest_n_safe: int | None = Field(None, ge=0)
    xstest_n_unsafe: int | None = Field(None, ge=0)
    harmbench_n: int | None = Field(None, ge=0)
    harmbench_refusal_rate: float | None = Field(None, description="Refusal rate (string match) on the behaviours.")


class CalibrationRow(StrictModel):
    """Calibration of one multiple-choice task (``Policy`` holds the pooled numbers)."""

    task: str
    n: int = Field(..., ge=0)
    accuracy: float
    ece: float
    adaptive_ece: float
    brier: float
    nll: float


class LengthRow(StrictModel):
    """Token lengths of one generative task's responses, and their shift against the base when one is given."""

    task: str
    part: Literal["answer", "thinking"] = "answer"
    n: int = Field(..., ge=0)
    mean: float
    median: float
    p90: float
    truncation_rate: float | None = None
    w1_log: float | None = Field(None, description="1-Wasserstein on log(1 + length) vs base")
    ks: float | None = Field(None, description="Two-sample KS statistic vs base")


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
    kl_target: float | None = Field(
        None, description="E_x[KL(base || post)] on target prompts (RL's Razor), Monte Carlo: the mean over base "
        "samples of their summed log-ratios log p_base - log p_post (unbiased, but a sample can be negative).",
    )
    item_subset_hash: dict[str, str] = Field(default_factory=dict, description="task -> hash of evaluated item ids")
    samples_dir: str | None = None
    created_at: str | None = None
    engine: str | None = Field(None, description="Backend that produced the results (hf, vllm).")
    item_selection: dict[str, str] = Field(
        default_factory=dict, description="task -> how its items were chosen (all, first:N, random:N:seed=S, indices:...)"
    )
    protocol: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict,
        description="What must match for two result sets to be compared: tasks asked for, item selection settings, "
        "chat template, few-shot, thinking, target template.",
    )
    samples_files: dict[str, str] = Field(
        default_factory=dict, description="task -> per-item records, relative to the folder of results.json"
    )
    lm_eval_dir: str | None = Field(None, description="lm-eval's own result files, relative to results.json.")
    target_env_id: str | None = None
    kl_target_n: int | None = Field(None, ge=0, description="Base samples behind kl_target.")
    kl_target_stderr: float | None = Field(None, description="Standard error of kl_target over its samples.")
    kl_target_exact: float | None = Field(
        None, description="E_x[KL(base || post)] on the same base samples, exact per token: at every position the "
        "KL summed over the vocabulary, summed over the sample, mean over samples; never negative. Absent in results "
        "written before it (the analyzer then falls back to kl_target, and says so).",
    )
    kl_target_exact_stderr: float | None = Field(None, description="Standard error of kl_target_exact over samples.")
    calibration: list[CalibrationRow] = Field(default_factory=list)
    lengths: list[LengthRow] = Field(default_factory=list)
    refusal_classifier: str | None = Field(None, description="XSTest refusal classifier (string-match or a judge).")
    safety_breakdown: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="e.g. xstest_refusal_by_type: {type: refusal rate}"
    )
    task_groups: dict[str, list[str]] = Field(
        default_factory=dict, description="requested lm-eval task -> its leaf tasks (whose records are in samples)"
    )
    extensions: dict[str, Any] = Field(
        default_factory=dict, description="Later analyses (attacks, refusal direction, representations), by name."
    )
