"""Plan the study's safety blocks: evaluator runs of the ``attacks`` suite on the selected checkpoints, and of the
``refusal_direction`` suite on every post-trained checkpoint against the SAFE baseline of its size.

Why here, after the method table is expanded: both blocks select among the checkpoints the table produced (by
student, method, domain, seed, run id), and the direction wires one run's output into many: each SAFE baseline's
own run (``<student>.untrained.eval-refusal_direction``, a shared run like every untrained evaluation) extracts the
direction and writes it into its output folder; every post-trained checkpoint's run reads that file through
``refusal_direction.base_direction`` and waits for that run (a dependency of the plan, as an input link is). Attacks
on untrained checkpoints are shared runs too, so a later phase that selects the same baseline reuses the attack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stages.study.builders import link, uri
from stages.study.catalog import ATTACK_SUITE, DIRECTION_FILE, DIRECTION_SUITE, EVAL, Method
from stages.study.dag import PlannedRun
from stages.study.definition import Student
from stages.study.errors import StudyError
from stages.study.merge import deep_merge
from stages.study.paths import expanded, join
from stages.study.safety_checks import direction_enabled

if TYPE_CHECKING:
    from stages.study.builders import Builder


@dataclass(frozen=True)
class Trained:
    """A post-trained checkpoint of the plan: the training run and what it is."""

    student: Student
    domain: str
    method: Method
    seed: int
    run: PlannedRun


def direction_ref(baseline: PlannedRun) -> str:
    """How a run names the direction file a SAFE baseline's run writes into its output folder: a link to that
    run's output where the evaluator declares the file as an output (resolved like an input link, pending until the
    baseline has run), else the file's path. Either way the reading run waits for the baseline's run."""
    from stages.registry import load_stage

    declared = [n for n, d in load_stage("evaluator").outputs.items() if d.path == DIRECTION_FILE]
    if declared:
        return link(baseline, declared[0])["from"]
    return expanded(join(baseline.output_dir, DIRECTION_FILE))


def _labels(t: Trained, base_run_id: str | None) -> dict[str, Any]:
    params = t.run.manifest["spec"]["params"]
    return dict(t.run.labels, lr=(params.get("optim") or {}).get("lr"),
                engine=t.run.manifest["spec"]["runtime"].get("engine"), base_run_id=base_run_id)


def _untrained(b: Builder, st: Student, suite: str, extra: dict[str, Any], resources: dict[str, Any],
               baseline: PlannedRun | None = None) -> PlannedRun:
    size = b.size_of(st)
    start, problems = b.student_path(st)
    inputs, more = b.eval_inputs(suite, None)
    inputs = {EVAL.model: uri(start, "hf_model"), **inputs}
    seed = b.study.data_seed
    labels = {"method": "BASE", "start": st.start, "model_size": size, "seed": seed,
              "base_run_id": baseline.run_id if baseline else None}
    params, judges = b.eval_params(suite, None, labels, shared=True, extra=extra)
    deps = [baseline.run_id] if baseline else []
    return b.make("evaluator", f"{b.student_id(st)}.untrained.eval-{suite}", inputs, params, size, deps, seed,
                  labels=labels, resources=resources, problems=problems + more + judges, shared=True)


def _trained(b: Builder, t: Trained, suite: str, extra: dict[str, Any], resources: dict[str, Any],
             baseline: PlannedRun | None = None, base_run_id: str | None = None) -> PlannedRun:
    size = b.size_of(t.student)
    inputs, problems = b.eval_inputs(suite, None)
    inputs = {EVAL.model: link(t.run, t.method.model_output), **inputs}
    labels = _labels(t, baseline.run_id if baseline else base_run_id)
    params, judges = b.eval_params(suite, None, labels, extra=extra)
    deps = [t.run.run_id] + ([baseline.run_id] if baseline else [])
    return b.make("evaluator", f"{t.run.run_id}.eval-{suite}", inputs, params, size, deps,
                  t.run.manifest["spec"]["runtime"]["seed"], labels=labels, resources=resources,
                  problems=problems + judges)


def attack_runs(b: Builder, trained: list[Trained]) -> list[PlannedRun]:
    """The ``attacks`` runs of the study's selection: untrained checkpoints first, then post-trained ones."""
    a = b.study.attacks
    if a is None:
        return []
    known = {t.run.run_id for t in trained}
    for i, rid in enumerate(a.runs):
        if rid not in known:
            some = ", ".join(sorted(known)[:4]) + (" ..." if len(known) > 4 else "")
            raise StudyError(f"run {rid!r} is not a post-trained checkpoint of the study (e.g. {some or 'none'})",
                             f"attacks.runs[{i}]")
    chosen = {b.student_id(st) for st in b.study.students if a.students is None or b.student_id(st) in a.students}
    doms = a.domains if a.domains is not None else b.study.domains
    extra = {ATTACK_SUITE: a.params}
    out: list[PlannedRun] = []
    bases: dict[str, str] = {}
    for st in b.study.students:
        if b.student_id(st) in chosen and (a.include_base if st.start == "BASE" else a.include_safe):
            out.append(_untrained(b, st, ATTACK_SUITE, extra, a.resources))
            bases[b.student_id(st)] = out[-1].run_id
    for t in trained:
        selected = (b.student_id(t.student) in chosen and t.method.name in a.methods and t.domain in doms
                    and (a.seeds is None or t.seed in a.seeds))
        if selected or t.run.run_id in a.runs:
            out.append(_trained(b, t, ATTACK_SUITE, extra, a.resources,
                                base_run_id=bases.get(b.student_id(t.student))))
    if not out:
        raise StudyError("the attacks block selects no checkpoint of the plan", "attacks")
    return out


def direction_runs(b: Builder, trained: list[Trained]) -> list[PlannedRun]:
    """Each SAFE baseline's own run (it extracts the direction), then every post-trained checkpoint of a selected
    start, and the untrained BASE checkpoints, against the SAFE baseline of their size."""
    if not direction_enabled(b.study):
        return []
    rd = b.study.refusal_direction
    out: list[PlannedRun] = []
    baselines: dict[str, PlannedRun] = {}  # student id or size -> the SAFE baseline's own run
    for st in b.study.students:
        if st.start == "SAFE":  # no base: the model is its own, and the run writes the direction file
            run = _untrained(b, st, DIRECTION_SUITE, {DIRECTION_SUITE: rd.params}, rd.resources)
            out.append(run)
            baselines[b.student_id(st)] = run
            baselines.setdefault(b.size_of(st), run)  # a BASE checkpoint's: the first SAFE one of its size

    def against(st: Student) -> PlannedRun | None:
        return baselines.get(b.student_id(st)) if st.start == "SAFE" else baselines.get(b.size_of(st))

    def extra(baseline: PlannedRun) -> dict[str, Any]:
        return {DIRECTION_SUITE: deep_merge(rd.params, {"base_direction": direction_ref(baseline)})}

    if "BASE" in rd.starts:
        for st in b.study.students:
            found = against(st) if st.start == "BASE" else None
            if found:
                out.append(_untrained(b, st, DIRECTION_SUITE, extra(found), rd.resources, baseline=found))
    for t in trained:
        found = against(t.student) if t.student.start in rd.starts else None
        if found:
            out.append(_trained(b, t, DIRECTION_SUITE, extra(found), rd.resources, baseline=found))
    return out
