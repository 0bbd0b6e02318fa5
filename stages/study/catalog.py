"""The study's vocabulary as plain data: which stage trains each method, what data each method needs, and how one
stage's outputs feed the next stage's inputs.

Why a table: the planner must not hide the wiring in code paths. Adding a method or changing what feeds a trainer is
an edit here, checked by tests against the stages' own declarations (every input and output named here must exist
on the stage it names). Domains and their env ids come from ``stages.envs.registry`` so dataset folders are named in
one place only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataJob:
    """One collector run shared by every method (and student) that needs its output."""

    key: str  # part of the run id: data.<domain>.<key>
    mode: str  # collector params.mode
    output: str  # the collector output the consumer reads
    teacher: str | None = None  # "same-family" / "cross-family": a study teacher role whose model is sampled


@dataclass(frozen=True)
class Method:
    name: str  # GT-SFT, ...; the analyzer's `method` label
    stage: str  # the stage that trains it
    data: str  # key of DATA_JOBS feeding it
    data_input: str  # the trainer's input fed by that collector output
    model_input: str = "model"  # the trainer's input taking the starting checkpoint
    model_output: str = "model"  # the trainer's output holding the trained checkpoint

    @property
    def slug(self) -> str:
        return self.name.lower()


DATA_JOBS: dict[str, DataJob] = {
    "gt": DataJob("gt", "ground-truth", "sft"),
    "sf": DataJob("sf", "generate", "sft", teacher="same-family"),
    "cf": DataJob("cf", "generate", "sft", teacher="cross-family"),
    "prompts": DataJob("prompts", "prompts", "prompts"),
}

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("GT-SFT", "sft-trainer", "gt", "data"),
        Method("SF-SFT", "sft-trainer", "sf", "data"),
        Method("CF-SFT", "sft-trainer", "cf", "data"),
        Method("SELF", "spin", "prompts", "prompts"),
        Method("ON-RL", "grpo-trainer", "prompts", "prompts"),
        Method("PI", "pi-distill", "prompts", "prompts"),
    )
}

TEACHER_ROLES = ("same-family", "cross-family")
STARTS = ("BASE", "SAFE")

# The collector's inputs: the dataset of the domain's training env, and the teacher model in generate mode.
COLLECTOR_DATASET_INPUT = "dataset"
COLLECTOR_MODEL_INPUT = "model"


@dataclass(frozen=True)
class EvalWiring:
    """How an evaluator run is fed (input names of the evaluator stage)."""

    model: str = "model"  # the checkpoint under test
    base_model: str = "base_model"  # the starting checkpoint, for KL(base || post)
    base_results: str = "base_results"  # the base's results of the same suite, for sample-level forgetting
    base_rerun_results: str = "base_rerun_results"  # a second evaluation of the base: the noise flip rate
    target_data: str = "target_data"  # the domain's eval dataset (target suites)
    benchmarks: str = "benchmarks"  # local benchmark rows (safety suites)
    results_output: str = "results"  # the evaluator output the analyzer reads


EVAL = EvalWiring()
EVAL_SUITES = ("forgetting", "safety", "policy", "target", "all", "representations")  # trained runs get base_model
TARGET_SUITES = ("target", "all")  # suites that score the domain's eval env: one base evaluation per domain
# Suites the study's own blocks plan (``attacks:``, ``refusal_direction:``), never `evaluation.suites`: attacks run
# only on the checkpoints the study selects; the direction needs its SAFE baseline's run wired in.
ATTACK_SUITE = "attacks"
DIRECTION_SUITE = "refusal_direction"
BLOCK_SUITES = (ATTACK_SUITE, DIRECTION_SUITE)
BENCHMARK_SUITES = ("safety", "all", "representations", *BLOCK_SUITES)  # suites that read local benchmark rows
# The file a SAFE baseline's run of the refusal_direction suite writes into its output folder (the evaluator's
# stages/evaluator/refusal/store.py FILE_NAME; a test keeps the two equal), read by later runs' base_direction.
DIRECTION_FILE = "refusal_direction.safetensors"


def domains() -> dict[str, tuple[str, str]]:
    """domain -> (training env id, evaluation env id), from the envs registry."""
    from stages.envs.registry import DOMAINS, ENVS

    out: dict[str, tuple[str, str]] = {}
    for d in DOMAINS:
        train = next(e.env_id for e in ENVS.values() if e.domain == d and e.role == "train")
        evaluation = next(e.env_id for e in ENVS.values() if e.domain == d and e.role == "eval")
        out[d] = (train, evaluation)
    return out


def dataset_folder(env_id: str) -> str:
    """The folder name of an env's dataset under a datasets root (snapshots and fixtures use the same names)."""
    from stages.envs.registry import env_spec

    return env_spec(env_id).folder
