"""Checks of the study's safety settings, before anything is planned: the judges, the ``attacks:`` selection and the
``refusal_direction:`` block.

Why before planning: an attack selection that names a method the study does not train, a seed no domain trains, or
nothing at all would otherwise plan a study without its attacks, silently; an unknown attack method or budget key
would only surface once per planned run. Each failure names its key (``attacks.methods[1]``) and the valid choices.
The attack and direction params are validated by the evaluator's own params models (the conductor reads stage
declarations, never their run code).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from stages.study.catalog import ATTACK_SUITE, DIRECTION_SUITE, METHODS
from stages.study.errors import StudyError

if TYPE_CHECKING:
    from stages.study.definition import StudyDef


def student_ids(study: StudyDef) -> dict[str, str]:
    """student id (run id prefix) -> start (BASE or SAFE)."""
    return {st.id or f"{st.model.lower()}.{st.start.lower()}": st.start for st in study.students}


def seeds_of(study: StudyDef, domain: str) -> list[int]:
    return study.seeds_by_domain.get(domain, study.seeds)


def suite_params(field: str, params: dict[str, Any], where: str) -> None:
    """Validate ``params`` with the evaluator's sub-model for ``field`` (its ``attacks`` or ``refusal_direction``)."""
    from pydantic import TypeAdapter

    from stages.registry import load_stage

    info = load_stage("evaluator").params.model_fields.get(field)
    if info is None:
        raise StudyError(f"the evaluator in this checkout has no `{field}` params (its {field} suite is not built)",
                         where)
    try:
        TypeAdapter(info.annotation).validate_python(params)
    except ValidationError as e:
        errs = [f"{'.'.join(str(p) for p in err['loc']) or where}: "
                f"{'unknown key (check its spelling)' if err['type'] == 'extra_forbidden' else err['msg']}"
                for err in e.errors(include_url=False)]
        raise StudyError(f"evaluator `{field}` params are invalid: " + "; ".join(errs), where) from None


def _check_judges(study: StudyDef) -> None:
    ckpts = study.models.checkpoints
    for param, key in study.evaluation.judges.items():
        if key not in ckpts:
            raise StudyError(f"unknown model {key!r}; declare it in models.checkpoints (choose from: "
                             f"{', '.join(ckpts) or 'none declared'})", f"evaluation.judges.{param}")


def _check_attacks(study: StudyDef) -> None:
    a = study.attacks
    if a is None:
        return
    ids = student_ids(study)
    for i, sid in enumerate(a.students or []):
        if sid not in ids:
            raise StudyError(f"unknown student {sid!r}; choose from: {', '.join(ids) or '(no students)'}",
                             f"attacks.students[{i}]")
    chosen = {sid: start for sid, start in ids.items() if a.students is None or sid in a.students}
    for i, m in enumerate(a.methods):
        if m not in study.methods:
            what = "a method this study does not train" if m in METHODS else "unknown method"
            raise StudyError(f"{what} {m!r}; choose from: {', '.join(study.methods) or '(no methods)'}",
                             f"attacks.methods[{i}]")
    for i, d in enumerate(a.domains or []):
        if d not in study.domains:
            raise StudyError(f"unknown domain {d!r}; choose from: {', '.join(study.domains) or '(no domains)'}",
                             f"attacks.domains[{i}]")
    doms = a.domains if a.domains is not None else study.domains
    trained = sorted({s for d in doms for s in seeds_of(study, d)})
    for i, seed in enumerate(a.seeds or []):
        if seed not in trained:
            raise StudyError(f"no selected domain trains seed {seed} (they train: {trained})", f"attacks.seeds[{i}]")
    for flag, start in (("include_base", "BASE"), ("include_safe", "SAFE")):
        if getattr(a, flag) and start not in chosen.values():
            raise StudyError(f"no selected student starts from {start}, so there is no untrained {start} checkpoint "
                             f"to attack (students: {', '.join(f'{s} ({v})' for s, v in chosen.items()) or 'none'})",
                             f"attacks.{flag}")
    if not a.runs and not a.include_base and not a.include_safe and not (a.methods and doms and chosen):
        raise StudyError("the attacks block selects no checkpoint: name `methods` (with students, domains and "
                         "seeds to narrow them), `runs`, or set include_base / include_safe", "attacks")
    if "base_direction" in a.params:
        raise StudyError("not an attacks param", "attacks.params.base_direction")
    suite_params(ATTACK_SUITE, a.params, "attacks.params")


def direction_enabled(study: StudyDef) -> bool:
    rd = study.refusal_direction
    return rd.enabled if rd.enabled is not None else any(st.start == "SAFE" for st in study.students)


def _check_direction(study: StudyDef) -> None:
    rd = study.refusal_direction
    if rd.enabled and not any(st.start == "SAFE" for st in study.students):
        raise StudyError("the refusal direction is extracted from a SAFE baseline, and the study has no SAFE student",
                         "refusal_direction.enabled")
    if not direction_enabled(study):
        return
    if "base_direction" in rd.params:
        raise StudyError("set by the planner (each SAFE baseline's own run writes it); leave it out",
                         "refusal_direction.params.base_direction")
    suite_params(DIRECTION_SUITE, rd.params, "refusal_direction.params")


def check_safety(study: StudyDef) -> None:
    _check_judges(study)
    _check_attacks(study)
    _check_direction(study)
