"""The planned study as a graph: runs (one stage manifest each) and the runs they wait for.

Everything downstream of planning (the local executor, the Slurm submitter, status) works on this one structure, so
the order of runs, cycle detection and "what depends on this failure" are answered in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from stages.study.errors import StudyError
from stages.study.paths import join


@dataclass
class PlannedRun:
    run_id: str
    stage: str
    manifest: dict[str, Any]  # the full manifest JSON written to <run_dir>/manifest.json
    deps: tuple[str, ...]  # run ids that must succeed first
    run_dir: str  # <root>/<study>/<run_id> (may hold $VARS)
    command: list[str] | None = None  # explicit argv before `--manifest M` (extra runs)
    image: str | None = None  # image name of a project stage (images/<image>)
    size: str | None = None  # model size label, for resources and display
    labels: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # paths that could not be resolved for this cluster

    @property
    def manifest_path(self) -> str:
        return join(self.run_dir, "manifest.json")

    @property
    def output_dir(self) -> str:
        return join(self.run_dir, "out")

    @property
    def record_path(self) -> str:
        """The stage's own live record (status, provenance, outputs): <output_dir>/manifest.json."""
        return join(self.output_dir, "manifest.json")

    @property
    def resources(self) -> dict[str, Any]:
        return self.manifest["spec"]["resources"]

    @property
    def gpus(self) -> int:
        return int(self.resources.get("gpus_per_node", 0))

    def manifest_text(self) -> str:
        return json.dumps(self.manifest, indent=2) + "\n"


@dataclass
class Plan:
    study: str
    root: str
    cluster: str
    runs: dict[str, PlannedRun]  # in dependency order
    left_out: dict[str, str] = field(default_factory=dict)  # run id -> why it is not planned

    @property
    def study_dir(self) -> str:
        return join(self.root, self.study)

    def downstream(self, run_ids: set[str]) -> set[str]:
        """The given runs and everything that depends on them, directly or not."""
        out = set(run_ids)
        for rid, run in self.runs.items():  # dependency order: one pass suffices
            if any(d in out for d in run.deps):
                out.add(rid)
        return out

    def dependents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {rid: [] for rid in self.runs}
        for rid, run in self.runs.items():
            for d in run.deps:
                out[d].append(rid)
        return out


def topological(runs: dict[str, PlannedRun]) -> dict[str, PlannedRun]:
    """Order runs so that every run follows its dependencies (stable: ties keep planning order)."""
    for rid, run in runs.items():
        for d in run.deps:
            if d not in runs:
                raise StudyError(f"run {rid!r} waits for {d!r}, which the study does not plan", f"runs.{rid}")
    ordered: dict[str, PlannedRun] = {}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(rid: str, path: list[str]) -> None:
        if state.get(rid) == 2:
            return
        if state.get(rid) == 1:
            cycle = path[path.index(rid):] + [rid]
            raise StudyError(f"the runs form a cycle: {' -> '.join(cycle)}", "runs")
        state[rid] = 1
        for d in runs[rid].deps:
            visit(d, path + [rid])
        state[rid] = 2
        ordered[rid] = runs[rid]

    for rid in runs:
        visit(rid, [])
    return ordered
