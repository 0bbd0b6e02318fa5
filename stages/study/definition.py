"""The study definition: one YAML (or JSON) file in ``manifests/studies/`` that says everything a study runs.

Why one closed model: a study is written once and run on a laptop, on CI and on seven clusters, so a typo must be an
error naming its key, never a silently different experiment. The file names checkpoints (with local paths per
cluster or a scratch root), students and their starting points (BASE, SAFE), teachers, domains, methods, seeds,
hyperparameters and sweeps, evaluator suites and judges, the checkpoints attacked and the refusal
direction (``safety_blocks``), resources per stage and model size, and optionally extra runs with
explicit commands. ``extends:`` lets a variant (a learning-rate sweep) reuse a phase file and change a few keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from stages.core.manifest import RUN_ID_PATTERN
from stages.core.model_base import StrictModel
from stages.study.errors import StudyError
from stages.study.merge import deep_merge
from stages.study.safety_blocks import AttackSelection, DirectionPlan

STUDY_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
STUDIES_DIR = Path(__file__).resolve().parents[2] / "manifests" / "studies"


class Checkpoint(StrictModel):
    """A model the study names. Its folder is found per cluster: ``paths[cluster]``, ``path``, then a models root."""

    repo_id: str | None = Field(None, description="Hugging Face repo id (recorded; never downloaded at run time).")
    size: str = Field(..., min_length=1, description="Size label used for resources and labels: 1.7B, 4B, tiny ...")
    folder: str | None = Field(None, description="Folder name under a models root; default: the repo id's last part.")
    path: str | None = Field(None, description="The folder on every cluster (relative paths: from the cwd).")
    paths: dict[str, str] = Field(default_factory=dict, description="cluster -> folder, overriding `path`.")
    licence: str | None = Field(None, description="The weights' licence, recorded by `study stage` where the hub's "
                                "card names none.")


class Models(StrictModel):
    root: str | None = Field(None, description="Default models root: <root>/<folder>.")
    clusters: dict[str, str] = Field(default_factory=dict, description="cluster -> models root.")
    checkpoints: dict[str, Checkpoint] = Field(default_factory=dict)


class Student(StrictModel):
    """A checkpoint that gets post-trained, and the starting point it stands for."""

    model: str = Field(..., description="A key of models.checkpoints.")
    start: Literal["BASE", "SAFE"] = Field(..., description="BASE (pretrained -Base) or SAFE (aligned) start.")
    id: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Run id prefix; default model.start.")


class Data(StrictModel):
    root: str | None = Field(None, description="Datasets root: <root>/<env folder> (stages.envs.registry).")
    clusters: dict[str, str] = Field(default_factory=dict, description="cluster -> datasets root.")
    paths: dict[str, str] = Field(default_factory=dict, description="env id -> dataset folder, overriding the roots.")
    benchmarks: str | None = Field(None, description="Folder of local benchmark rows for the evaluator (XSTest ...).")


class Evaluation(StrictModel):
    suites: list[str] = Field(default_factory=lambda: ["forgetting"], description="Evaluator suites to run.")
    params: dict[str, Any] = Field(default_factory=dict, description="Evaluator params for every suite.")
    per_suite: dict[str, dict[str, Any]] = Field(default_factory=dict, description="suite -> extra params.")
    base: bool = Field(True, description="Evaluate each student's starting checkpoint (the shared baseline).")
    judges: dict[Literal["judge_model", "harmbench_classifier"], str] = Field(
        default_factory=dict,
        description="Evaluator judge param -> a key of models.checkpoints: the judge's folder on the cluster is set "
        "in every evaluator run (and `study stage` fetches it like every model).",
    )
    base_replicates: int = Field(
        2, ge=1, le=5,
        description="Independent evaluations of each starting checkpoint (seeds data_seed, data_seed+1, ...). The "
        "second gives the noise flip rate of sample-level forgetting (items that flip between two runs of the same "
        "model); 1 leaves it unmeasured.",
    )


class Analysis(StrictModel):
    enabled: bool = Field(True, description="Run the analyzer over every evaluator result of the study.")
    params: dict[str, Any] = Field(default_factory=dict, description="Analyzer params (title defaults to the study).")


class ResourcePlan(StrictModel):
    """Resources per stage and model size, layered: core defaults < default < stages.<s>.default < stages.<s>.<size>."""

    default: dict[str, Any] = Field(default_factory=dict)
    stages: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)


class RunInput(StrictModel):
    """An extra run's input: another run's output (``run`` + ``output``) or a file (``uri`` + ``kind``)."""

    run: str | None = None
    output: str | None = None
    uri: str | None = None
    kind: str | None = None


class ExtraRun(StrictModel):
    """A run the method table does not generate: any stage, or any command that takes ``--manifest`` (a stage CLI).

    Runs of project stages are validated at planning time; a command of another stage validates its manifest when
    it runs. For those, "already done" compares only the params the study sets: deleting one is not noticed.
    """

    run_id: str = Field(..., pattern=RUN_ID_PATTERN)
    stage: str = Field(..., min_length=1)
    command: list[str] | None = Field(None, description="argv before `--manifest M`; default: the stage's script.")
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, RunInput] = Field(default_factory=dict)
    after: list[str] = Field(default_factory=list, description="Runs that must succeed first (besides inputs).")
    resources: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    engine: str | None = None


class StudyDef(StrictModel):
    study: str = Field(..., pattern=STUDY_NAME_PATTERN, description="Name; runs live under <root>/<study>/.")
    description: str = ""
    extends: str | None = Field(None, description="Another study file this one starts from (resolved at load).")
    stages: list[str] | None = Field(None, description="Stages to plan; runs of other stages are left out.")
    models: Models = Field(default_factory=Models)
    students: list[Student] = Field(default_factory=list)
    teachers: dict[str, str] = Field(default_factory=dict, description="same-family / cross-family -> checkpoint.")
    domains: list[str] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [0])
    seeds_by_domain: dict[str, list[int]] = Field(
        default_factory=dict,
        description="domain -> training seeds, replacing `seeds` there: seed replicates on a slice of the study give "
        "the analyzer's intervals without multiplying every run.",
    )
    data_seed: int = Field(0, ge=0, description="Seed of the collector runs, shared by every training seed.")
    data: Data = Field(default_factory=Data)
    thinking: bool = Field(False, description="Qwen3 thinking mode for every stage alike.")
    lora: dict[str, Any] | None = Field(None, description="LoRA settings applied to every trainer alike.")
    engines: dict[str, str] = Field(default_factory=dict, description="stage -> engine.")
    tracking: dict[str, Any] = Field(default_factory=dict, description="W&B settings (runtime.tracking).")
    checkpoint_every_minutes: float | None = Field(None, gt=0)
    collection: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Collector params: `all`, then per mode (ground-truth, generate, prompts)."
    )
    hyperparameters: dict[str, dict[str, Any]] = Field(default_factory=dict, description="method -> params.")
    hyperparameters_by_size: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict, description="size -> method -> params, over `hyperparameters`."
    )
    sweeps: dict[str, dict[str, list[Any]]] = Field(
        default_factory=dict, description="method -> dotted param -> values: one run per combination."
    )
    evaluation: Evaluation = Field(default_factory=Evaluation)
    analysis: Analysis = Field(default_factory=Analysis)
    resources: ResourcePlan = Field(default_factory=ResourcePlan)
    attacks: AttackSelection | None = Field(None, description="Adversarial attacks on selected checkpoints.")
    refusal_direction: DirectionPlan = Field(
        default_factory=DirectionPlan, description="The refusal direction from each SAFE baseline, measured on every "
        "post-trained checkpoint of its size.")
    runs: list[ExtraRun] = Field(default_factory=list, description="Extra runs with explicit stages or commands.")
    answer_only_targets: bool = Field(
        False,
        description="Let GT-SFT, SELF (its chosen side) and PI (its privileged information) train on answer-only "
        "targets, or on code rows without a program, where the training dataset lacks worked solutions. Off, "
        "`study stage`, `plan` and `check` refuse such runs, naming the dataset (QA's ground truth is its answer "
        "either way).",
    )
    shared_runs: bool = Field(
        True,
        description="Collector runs and the untrained model's evaluations live once under <root>/shared/ and are "
        "reused by every study that plans the same spec there (teacher data collected once for all phases); false "
        "keeps them in the study's own folder.",
    )


def _where(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "study"


def known_studies() -> list[str]:
    return sorted(p.stem for p in STUDIES_DIR.glob("*.yaml")) if STUDIES_DIR.is_dir() else []


def resolve_study_path(ref: str) -> Path:
    """A path to a study file, or the name of one in manifests/studies/."""
    p = Path(ref)
    if p.is_file():
        return p.resolve()
    for candidate in (STUDIES_DIR / ref, STUDIES_DIR / f"{ref}.yaml", STUDIES_DIR / f"{ref}.json"):
        if candidate.is_file():
            return candidate
    known = ", ".join(known_studies()) or "none"
    raise StudyError(f"study file not found: {ref} (studies in {STUDIES_DIR}: {known})")


def _read_raw(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in chain:
        raise StudyError(f"`extends` loops: {' -> '.join(str(p) for p in (*chain, path))}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise StudyError(f"{path} is not valid YAML/JSON: {e}") from None
    except OSError as e:
        raise StudyError(f"cannot read {path}: {e}") from None
    if not isinstance(raw, dict):
        raise StudyError(f"{path} must hold a mapping (study: ..., methods: ...), not {type(raw).__name__}")
    parent = raw.get("extends")
    if parent:
        base_path = (path.parent / parent) if not Path(parent).is_absolute() else Path(parent)
        if not base_path.is_file() and (STUDIES_DIR / f"{parent}.yaml").is_file():
            base_path = STUDIES_DIR / f"{parent}.yaml"
        if not base_path.is_file():
            raise StudyError(f"`extends: {parent}` in {path}: no such study file")
        raw = deep_merge(_read_raw(base_path.resolve(), (*chain, path)), {k: v for k, v in raw.items()})
    return raw


def parse_study(raw: dict[str, Any], source: str = "study") -> StudyDef:
    try:
        study = StudyDef.model_validate(raw)
    except ValidationError as e:
        lines = []
        for err in e.errors(include_url=False):
            msg = "unknown key (check its spelling)" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"{_where(err['loc'])}: {msg}")
        raise StudyError(f"{source}: " + "; ".join(lines)) from None
    from stages.study.checks import check_study

    check_study(study)
    return study


def load_study(ref: str) -> StudyDef:
    """Read, merge (``extends``), validate and check a study file; every fault is a ``StudyError``."""
    path = resolve_study_path(ref)
    return parse_study(_read_raw(path), str(path))
