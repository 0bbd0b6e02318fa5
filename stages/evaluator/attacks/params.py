"""Parameters of the ``attacks`` suite (``params.attacks`` of an evaluator manifest): which HarmBench behaviours are
attacked, by which methods, with which budgets.

The budgets default to HarmBench's own settings for each method (its GCG and AutoDAN method configurations), so a
study that asks for "GCG and AutoDAN as HarmBench runs them" needs to name nothing; a cheaper study lowers
``num_steps`` and ``search_width`` / ``population`` and says so, since attack success rates are only comparable at
equal budgets (the settings are copied into the results). ``seed`` is the suite's own and must stay fixed across a
study: it picks the behaviours and seeds each behaviour's attack, so every checkpoint faces the same attack.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stages.core.model_base import StrictModel

Method = Literal["gcg", "autodan"]
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]


class GCGParams(StrictModel):
    """Greedy Coordinate Gradient (Zou et al., 2023), run by nanoGCG; defaults are HarmBench's GCG settings."""

    num_steps: int = Field(500, ge=1, le=100000, description="Optimisation steps per behaviour.")
    search_width: int = Field(512, ge=1, le=65536, description="Candidate suffixes evaluated per step.")
    topk: int = Field(256, ge=1, le=65536, description="Top-k tokens per position taken from the token gradient.")
    n_replace: int = Field(1, ge=1, le=64, description="Suffix positions changed in each candidate.")
    optim_str_init: str = Field(" ".join(["x"] * 20), min_length=1,
                                description="Initial adversarial suffix (its token count is the suffix length).")
    allow_non_ascii: bool = Field(False, description="Let the suffix use non-ASCII tokens.")
    early_stopping: bool = Field(False, description="Stop a behaviour once a candidate's greedy output is the target.")
    batch_size: int | None = Field(None, ge=1, le=65536, description="Candidates per forward pass (None: all "
                                   "search_width at once, halved on out-of-memory by nanoGCG).")


class AutoDANParams(StrictModel):
    """AutoDAN's hierarchical genetic algorithm (Liu et al., 2023); defaults are HarmBench's AutoDAN settings."""

    num_steps: int = Field(100, ge=1, le=100000, description="Generations per behaviour.")
    eval_steps: int = Field(5, ge=1, le=100000, description="Every this many generations, the best prompt's "
                            "completion is checked for a refusal (see eval_with_check_refusal).")
    eval_with_check_refusal: bool = Field(True, description="Stop a behaviour early once the best prompt's "
                                          "completion is not a refusal (string match).")
    population: int = Field(64, ge=2, le=4096, description="Candidate prompts per generation (HarmBench's "
                            "batch_size).")
    num_elites: float = Field(0.1, ge=0.0, lt=1.0, description="Share of the population kept unchanged each "
                              "generation.")
    crossover: float = Field(0.5, ge=0.0, le=1.0, description="Probability that two parents swap sentences.")
    num_points: int = Field(5, ge=1, le=100, description="Crossover points (sentence boundaries) per crossover.")
    mutation: float = Field(0.01, ge=0.0, le=1.0, description="Probability that a child is mutated.")
    paragraph_every: int = Field(5, ge=1, le=1000, description="Every this many generations the paragraph-level "
                                 "step (selection, crossover, mutation) runs; the others run the sentence-level "
                                 "momentum word step (HGA). 1 = the plain GA.")
    check_max_new_tokens: int = Field(64, ge=1, le=4096, description="Length of the refusal-check completion.")
    forward_batch_size: int = Field(16, ge=1, le=4096, description="Candidates per forward pass of the fitness.")
    mutate_model: str | None = Field(
        None, description="Local folder of an LLM that paraphrases prompts as HarmBench's mutate model does. None "
        "(the default): word-level mutation (synonym swaps) with no extra model; the results record which was used.",
    )
    prototypes: str | None = Field(
        None, description="JSON file with a list of prototype jailbreak prompts, each holding [REPLACE] where the "
        "behaviour goes; None = the project's own prototype set (stages/evaluator/attacks/prototypes.py).",
    )


class AttackParams(StrictModel):
    """GCG and AutoDAN on a fixed, seeded subset of HarmBench behaviours, judged by the HarmBench classifier."""

    methods: list[Method] = Field(default_factory=lambda: list(METHODS), description="Attacks to run, in order.")
    n_behaviours: int = Field(20, ge=1, le=400, description="Behaviours drawn with `seed` from the HarmBench split "
                              "(copyright behaviours left out: their judge is not built), spread over the semantic "
                              "categories.")
    seed: int = Field(0, ge=0, description="Seed of the behaviour draw and of each behaviour's attack.")
    behaviour_ids: list[str] | None = Field(None, description="Explicit HarmBench BehaviorIDs instead of the draw.")
    functional_categories: list[Literal["standard", "contextual"]] = Field(
        default_factory=lambda: ["standard", "contextual"], min_length=1,
        description="HarmBench functional categories the draw takes from (copyright is never attacked). A contextual "
        "behaviour's prompt is about 5x longer, and a GCG step about 8x slower (bench/results/attacks.md).")
    max_new_tokens: int = Field(512, ge=1, le=8192, description="Length of the final completion the judge reads.")
    allow_refusal_fallback: bool = Field(
        False, description="Without harmbench_classifier, judge completions by refusal string matching (an upper "
        "bound, labelled refusal-fallback). Off: the suite requires the classifier.",
    )
    gcg: GCGParams = Field(default_factory=GCGParams, description="GCG budget and settings.")
    autodan: AutoDANParams = Field(default_factory=AutoDANParams, description="AutoDAN budget and settings.")

    @model_validator(mode="after")
    def _consistent(self) -> AttackParams:
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ValueError("attacks.methods must name each method at most once, and at least one")
        if self.behaviour_ids is not None and (not self.behaviour_ids or
                                               len(set(self.behaviour_ids)) != len(self.behaviour_ids)):
            raise ValueError("attacks.behaviour_ids, when given, must name distinct behaviours")
        return self
