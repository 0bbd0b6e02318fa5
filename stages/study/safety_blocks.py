"""The study file's two safety blocks: which checkpoints are attacked (``attacks:``) and how the refusal direction is
measured (``refusal_direction:``).

Why blocks of their own rather than entries of ``evaluation.suites``: an evaluation suite runs on every checkpoint,
and an attack (GCG, AutoDAN) costs GPU-hours per checkpoint, so it runs only on the checkpoints the study names
here, by student, method, domain and seed (or by run id), plus the untrained BASE and SAFE checkpoints when asked.
The refusal direction needs wiring a suite list cannot say: it is extracted once from each SAFE baseline, by that
baseline's own evaluator run, and every post-trained checkpoint of the same size reads that run's direction file.
The evaluator's own params for each suite (attack methods and budgets; sample counts of the direction) pass through
``params`` unchanged and are validated by the evaluator's model when the study is checked.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from stages.core.model_base import StrictModel


class AttackSelection(StrictModel):
    """The checkpoints the ``attacks`` evaluator suite runs on, and its params (the evaluator's ``attacks`` block)."""

    students: list[str] | None = Field(
        None, description="Student ids (run id prefixes, e.g. qwen3-4b.safe) whose checkpoints are attacked; None: "
        "every student.")
    methods: list[str] = Field(
        default_factory=list, description="Post-trained checkpoints of these methods (of the study's own methods).")
    domains: list[str] | None = Field(None, description="Of these training domains; None: every domain of the study.")
    seeds: list[int] | None = Field(None, description="Of these training seeds; None: every seed each domain trains.")
    runs: list[str] = Field(
        default_factory=list, description="Post-trained checkpoints named by their training run id, besides the "
        "selection above (a sweep point, one seed of one cell).")
    include_base: bool = Field(
        False, description="Attack the untrained BASE-start checkpoint of each selected student.")
    include_safe: bool = Field(
        False, description="Attack the untrained SAFE-start checkpoint (the aligned baseline) of each selected "
        "student.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The evaluator's `attacks` params: methods (gcg, autodan), n_behaviours, "
        "seed, behaviour_ids and each method's budget (HarmBench's defaults where not given).")
    resources: dict[str, Any] = Field(
        default_factory=dict, description="Over the evaluator's resources for the attack runs (their time limit).")


class DirectionPlan(StrictModel):
    """The refusal direction (Arditi et al., 2024): extracted by each SAFE baseline's own evaluator run, then measured
    on every post-trained checkpoint of that size against it."""

    enabled: bool | None = Field(None, description="None: on when the study has a SAFE student.")
    starts: list[Literal["BASE", "SAFE"]] = Field(
        default_factory=lambda: ["BASE", "SAFE"],
        description="Post-trained checkpoints of students with these starts are measured (a BASE-start checkpoint "
        "against the SAFE baseline of its size, where the study has one), and so is the untrained BASE checkpoint.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The evaluator's `refusal_direction` params (n_train, n_val, seed ...); "
        "base_direction is set by the planner.")
    resources: dict[str, Any] = Field(
        default_factory=dict, description="Over the evaluator's resources for the refusal-direction runs.")
