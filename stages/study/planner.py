"""Expand a study into its DAG of stage manifests: collector -> trainers -> evaluator -> analyzer.

Sharing is what makes the plan cheap and the comparison fair: one collector run per (domain, data kind) feeds every
method, student and seed that needs it (teacher data is collected once per domain), and one evaluation of each
starting checkpoint per suite is the baseline every trained model of that student is compared to. Those runs (and
every collection) are shared across studies too: they live under ``<root>/shared/`` (see ``builders``), so phase 2
plans phase 1's teacher collections and reuses them. The study's safety blocks add attack runs on the checkpoints
they select and the refusal direction against each SAFE baseline (``safety_plan``). Planning is pure: the same
study, root, cluster and staged data (whose ground-truth target kind the plan records and checks) always give the
same runs and the same files, and ``write_plan`` only rewrites a manifest whose content changed.
"""

from __future__ import annotations

import itertools
from typing import Any

from stages.study.builders import Builder, link, uri
from stages.study.catalog import DATA_JOBS, METHODS, TARGET_SUITES, domains
from stages.study.dag import Plan, PlannedRun, topological
from stages.study.definition import ExtraRun, StudyDef
from stages.study.errors import StudyError
from stages.study.paths import absolute, check_exists, local
from stages.study.safety_plan import Trained, attack_runs, direction_runs
from stages.study.validate import normalise


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def sweep_points(study: StudyDef, method: str) -> list[tuple[dict[str, Any], str]]:
    """Every combination of a method's sweep, with the run id suffix naming it (``.lr5e-05``)."""
    sweep = study.sweeps.get(method) or {}
    if not sweep:
        return [({}, "")]
    keys = list(sweep)
    out = []
    for values in itertools.product(*(sweep[k] for k in keys)):
        point = dict(zip(keys, values))
        suffix = "".join(f".{k.rsplit('.', 1)[-1]}{_fmt(v)}" for k, v in point.items())
        out.append((point, suffix))
    return out


class _Planner:
    def __init__(self, study: StudyDef, root: str, cluster: str):
        self.study = study
        self.b = Builder(study, root, cluster)
        self.runs: dict[str, PlannedRun] = {}

    def add(self, run: PlannedRun) -> PlannedRun:
        if run.run_id in self.runs:
            raise StudyError(f"two runs would share the id {run.run_id!r}", "runs")
        run.manifest = normalise(run.manifest)
        self.runs[run.run_id] = run
        return run

    def generated(self) -> None:
        s = self.study
        doms = domains()
        evals: list[PlannedRun] = []
        base_evals: dict[tuple[str, str, str | None], PlannedRun] = {}
        reruns: dict[tuple[str, str, str | None], PlannedRun] = {}
        checkpoints: list[Trained] = []
        if s.evaluation.base:
            for st in s.students:
                sid = self.b.student_id(st)
                for suite in s.evaluation.suites:
                    for d in (s.domains if suite in TARGET_SUITES else [None]):
                        env = doms[d][1] if d else None
                        for r in range(s.evaluation.base_replicates):
                            run = self.add(self.b.base_eval(st, suite, d, env, r))
                            evals.append(run)
                            if r == 0:
                                base_evals[(sid, suite, d)] = run
                            elif r == 1:  # the evaluator takes one rerun for the noise flip rate
                                reruns[(sid, suite, d)] = run
        for d in s.domains:
            train_env, eval_env = doms[d]
            data: dict[str, PlannedRun] = {}
            for m in s.methods:
                key = METHODS[m].data
                if key not in data:
                    data[key] = self.add(self.b.data_run(d, train_env, DATA_JOBS[key]))
            for st in s.students:
                sid = self.b.student_id(st)
                for m in s.methods:
                    method = METHODS[m]
                    for seed in s.seeds_by_domain.get(d, s.seeds):
                        for point, suffix in sweep_points(s, m):
                            trained = self.add(self.b.train_run(st, d, method, seed, point, suffix, data[method.data]))
                            checkpoints.append(Trained(st, d, method, seed, trained))
                            for suite in s.evaluation.suites:
                                key = (sid, suite, d if suite in TARGET_SUITES else None)
                                evals.append(self.add(self.b.trained_eval(st, trained, method, suite, eval_env,
                                                                          base_evals.get(key), reruns.get(key))))
        for run in attack_runs(self.b, checkpoints) + direction_runs(self.b, checkpoints):
            evals.append(self.add(run))
        if s.analysis.enabled and evals:
            self.add(self.b.analyzer_run(evals))

    def extra(self, r: ExtraRun) -> None:
        inputs: dict[str, Any] = {}
        deps = list(r.after)
        for name, inp in r.inputs.items():
            if inp.run is not None:
                if inp.run not in self.runs and inp.run not in {x.run_id for x in self.study.runs}:
                    raise StudyError(f"input {name!r} names run {inp.run!r}, which the study does not plan",
                                     f"runs.{r.run_id}")
                deps.append(inp.run)
                up = self.runs.get(inp.run)  # a generated run may live under the shared root
                record = up.record_path if up else f"{self.b.run_dir(inp.run)}/out/manifest.json"
                inputs[name] = {"from": f"{record}#outputs.{inp.output}"}
            else:
                inputs[name] = uri(absolute(inp.uri or ""), inp.kind or "")
        self.add(self.b.make(r.stage, r.run_id, inputs, r.params, None, deps, r.seed, resources=r.resources,
                             engine=r.engine, command=r.command))


def _filter(study: StudyDef, runs: dict[str, PlannedRun]) -> tuple[dict[str, PlannedRun], dict[str, str]]:
    """Keep runs whose stage is enabled and whose upstream runs are all kept (runs are in dependency order)."""
    if study.stages is None:
        return runs, {}
    enabled = set(study.stages)
    kept: dict[str, PlannedRun] = {}
    left: dict[str, str] = {}
    for rid, run in runs.items():
        if run.stage not in enabled:
            left[rid] = f"stage {run.stage} is not in the study's `stages` list"
        elif any(d not in kept for d in run.deps):
            missing = next(d for d in run.deps if d not in kept)
            left[rid] = f"needs {missing}, which is left out"
        else:
            kept[rid] = run
    used = {d for run in kept.values() for d in run.deps}
    for rid, run in list(kept.items()):  # collection nobody kept would read is wasted work
        if run.stage == "collector" and "data" in run.labels and rid not in used:
            del kept[rid]
            left[rid] = "no run in the plan reads its output (their stages are left out)"
    return kept, left


def plan_study(study: StudyDef, root: str, cluster: str = "local", check_paths: bool = True) -> Plan:
    """The study's runs for one cluster and root, validated; raises ``StudyError`` before anything is written."""
    p = _Planner(study, absolute(root), cluster)
    p.generated()
    for r in study.runs:
        p.extra(r)
    ordered = topological(p.runs)
    kept, left = _filter(study, ordered)
    for run in kept.values():
        if run.problems:
            raise StudyError(run.problems[0], f"run {run.run_id}")
    if check_paths:
        seen: set[str] = set()
        for run in kept.values():
            for name, ref in run.manifest["spec"]["inputs"].items():
                path = ref.get("uri")
                if path and path not in seen:
                    seen.add(path)
                    check_exists(path, f"run {run.run_id}: input {name!r}")
    return Plan(study.study, absolute(root), cluster, kept, left)


def write_plan(plan: Plan) -> list[str]:
    """Write every run's manifest under <root>/<study>/<run_id>/manifest.json; return the ones that changed."""
    changed = []
    for run in plan.runs.values():
        path = local(run.manifest_path)
        text = run.manifest_text()
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        changed.append(run.run_id)
    return changed


__all__ = ["link", "plan_study", "sweep_points", "write_plan"]
