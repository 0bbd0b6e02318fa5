"""Semantic checks of a study definition, run before anything is planned, written or submitted.

The pydantic model checks shapes; this checks meaning against the project's tables: every method, domain, suite,
stage and engine must exist, every model a student or teacher names must be declared, sweeps must have values, and
extra runs must point at runs that exist. Each failure names the key at fault and lists the valid choices.

``generation_budgets`` looks at a planned study instead (the params with each stage's defaults filled in): methods of
one domain that sample with different new-token budgets are compared on unequal footing (a 256-token SELF sample is
cut short where a 2048-token GRPO rollout is not), so ``study check`` warns about them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stages.study.catalog import BLOCK_SUITES, DATA_JOBS, EVAL_SUITES, METHODS, TEACHER_ROLES, domains
from stages.study.errors import StudyError

if TYPE_CHECKING:
    from stages.study.dag import Plan
    from stages.study.definition import StudyDef

COLLECTION_KEYS = ("all", "ground-truth", "generate", "prompts")


def _choices(values) -> str:
    return ", ".join(values)


def _unknown(what: str, value: str, where: str, choices) -> StudyError:
    return StudyError(f"unknown {what} {value!r}; choose from: {_choices(choices)}", where)


def _check_names(study: StudyDef) -> None:
    known_domains = domains()
    for i, m in enumerate(study.methods):
        if m not in METHODS:
            raise _unknown("method", m, f"methods[{i}]", METHODS)
    for i, d in enumerate(study.domains):
        if d not in known_domains:
            raise _unknown("domain", d, f"domains[{i}]", known_domains)
    for key, where in ((study.hyperparameters, "hyperparameters"), (study.sweeps, "sweeps")):
        for m in key:
            if m not in METHODS:
                raise _unknown("method", m, f"{where}.{m}", METHODS)
    for size, per in study.hyperparameters_by_size.items():
        for m in per:
            if m not in METHODS:
                raise _unknown("method", m, f"hyperparameters_by_size.{size}.{m}", METHODS)
    for m, sweep in study.sweeps.items():
        for key, values in sweep.items():
            if not values:
                raise StudyError("a sweep needs at least one value", f"sweeps.{m}.{key}")
    for i, s in enumerate(study.evaluation.suites):
        if s in BLOCK_SUITES:
            raise StudyError(f"suite {s!r} is planned by the study's `{s}:` block (on the checkpoints it selects, "
                             "wired to its baselines), not by evaluation.suites", f"evaluation.suites[{i}]")
        if s not in EVAL_SUITES:
            raise _unknown("evaluator suite", s, f"evaluation.suites[{i}]", EVAL_SUITES)
    for s in study.evaluation.per_suite:
        if s not in EVAL_SUITES + BLOCK_SUITES:
            raise _unknown("evaluator suite", s, f"evaluation.per_suite.{s}", EVAL_SUITES + BLOCK_SUITES)
    for k in study.collection:
        if k not in COLLECTION_KEYS:
            raise _unknown("collection section", k, f"collection.{k}", COLLECTION_KEYS)
    if len(set(study.seeds)) != len(study.seeds):
        raise StudyError("seeds must be distinct", "seeds")
    for d, seeds in study.seeds_by_domain.items():
        if d not in study.domains:
            raise _unknown("domain", d, f"seeds_by_domain.{d}", study.domains or ["(no domains)"])
        if not seeds or len(set(seeds)) != len(seeds):
            raise StudyError("give one or more distinct seeds", f"seeds_by_domain.{d}")


def _check_stages(study: StudyDef) -> None:
    from stages.registry import BY_NAME, load_stage

    extra = {r.stage for r in study.runs}
    for i, s in enumerate(study.stages or []):
        if s not in BY_NAME and s not in extra:
            raise _unknown("stage", s, f"stages[{i}]", BY_NAME)
    for s, engine in study.engines.items():
        if s not in BY_NAME:
            raise _unknown("stage", s, f"engines.{s}", BY_NAME)
        engines = load_stage(s).engines
        if engine not in engines:
            raise _unknown(f"engine for {s}", engine, f"engines.{s}", engines)
    for s in study.resources.stages:
        if s not in BY_NAME and s not in extra:
            raise _unknown("stage", s, f"resources.stages.{s}", BY_NAME)


def _check_models(study: StudyDef) -> None:
    ckpts = study.models.checkpoints
    for i, st in enumerate(study.students):
        if st.model not in ckpts:
            raise _unknown("model", st.model, f"students[{i}].model", ckpts or ["(none declared)"])
    ids = [st.id or f"{st.model.lower()}.{st.start.lower()}" for st in study.students]
    if len(set(ids)) != len(ids):
        raise StudyError(f"two students share a run id prefix ({ids}); give them distinct `id`s", "students")
    for role, model in study.teachers.items():
        if role not in TEACHER_ROLES:
            raise _unknown("teacher role", role, f"teachers.{role}", TEACHER_ROLES)
        if model not in ckpts:
            raise _unknown("model", model, f"teachers.{role}", ckpts or ["(none declared)"])
    for m in study.methods:
        role = DATA_JOBS[METHODS[m].data].teacher
        if role and role not in study.teachers:
            raise StudyError(f"method {m} needs a {role} teacher: add teachers.{role}: <checkpoint>", "teachers")
    if study.methods and study.domains and not study.students:
        raise StudyError("methods and domains are given but no students (checkpoints to train)", "students")


def _check_extra_runs(study: StudyDef) -> None:
    from stages.registry import BY_NAME

    ids = [r.run_id for r in study.runs]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise StudyError(f"run ids used twice: {', '.join(dup)}", "runs")
    for i, r in enumerate(study.runs):
        if r.stage not in BY_NAME and not r.command:
            raise StudyError(
                f"stage {r.stage!r} is not one of the project's stages ({_choices(BY_NAME)}); give a `command`",
                f"runs[{i}].stage",
            )
        for name, inp in r.inputs.items():
            has_run = inp.run is not None or inp.output is not None
            has_uri = inp.uri is not None or inp.kind is not None
            incomplete = (has_run and not (inp.run and inp.output)) or (has_uri and not (inp.uri and inp.kind))
            if has_run == has_uri or incomplete:
                raise StudyError("give either `run` + `output` or `uri` + `kind`", f"runs[{i}].inputs.{name}")


def check_study(study: StudyDef) -> None:
    from stages.study.safety_checks import check_safety

    _check_names(study)
    _check_stages(study)
    _check_models(study)
    _check_extra_runs(study)
    check_safety(study)


def _budget(plan: Plan, run) -> int | None:
    """The new-token budget a trainer run's method samples with: its own sampling (SELF, ON-RL, PI), the teacher
    collection feeding it (SF-SFT, CF-SFT); None for a method that samples nothing (GT-SFT)."""
    from stages.study.costing.setups import params_of

    if run.stage != "sft-trainer":
        p = params_of(run)
        return p.sampling.max_new_tokens if p is not None and hasattr(p, "sampling") else None
    for dep in run.deps:
        up = plan.runs.get(dep)
        p = params_of(up) if up is not None and up.stage == "collector" else None
        if p is not None and p.mode == "generate":
            return p.sampling.max_new_tokens
    return None


def generation_budgets(plan: Plan) -> list[str]:
    """One warning per domain whose methods sample with different ``max_new_tokens``."""
    per: dict[str, dict[str, set[int]]] = {}
    for run in plan.runs.values():
        method, domain = run.labels.get("method"), run.labels.get("domain")
        if method not in METHODS or not domain or run.stage != METHODS[method].stage:
            continue
        budget = _budget(plan, run)
        if budget is not None:
            per.setdefault(domain, {}).setdefault(method, set()).add(budget)
    out = []
    for domain, methods in per.items():
        if len({b for bs in methods.values() for b in bs}) > 1:
            each = ", ".join(f"{m} {'/'.join(map(str, sorted(bs)))}" for m, bs in methods.items())
            out.append(f"domain {domain}: its methods sample with different new-token budgets ({each}): the "
                       "comparison favours the longer budget; give every method the same sampling.max_new_tokens "
                       "(collection.generate for SF/CF-SFT) or say in the study file why not")
    return out

