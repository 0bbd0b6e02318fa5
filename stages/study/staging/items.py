"""What a planned study reads from disk, item by item: the list ``study stage`` fetches and ``study check`` looks for.

Items come from the plan itself (every manifest input with a path, the evaluator's judge models, the benchmark rows
and lm-eval tasks its params name), so they are exactly the paths the stages will open, whatever cluster, root or
per-checkpoint paths the study sets. The study adds where each can be fetched from: a checkpoint's ``repo_id``, the
GEM dataset of an env id (``stages.envs.registry``), the benchmark sources (``benchmarks.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from stages.study.dag import Plan
from stages.study.definition import StudyDef
from stages.study.errors import StudyError
from stages.study.staging.benchmarks import BENCHMARKS, benchmarks_read, evaluator_tasks, hub_tasks

JUDGE_PARAMS = ("judge_model", "harmbench_classifier")


@dataclass
class Item:
    kind: str  # model | dataset | benchmark | lm-eval
    name: str  # what check names: checkpoint key or folder, env ids, benchmark name, "tasks"
    path: str  # where the stages read it (may hold $VARS)
    source: str | None = None  # hub repo id (models, datasets, hub benchmarks), pip requirement (HarmBench)
    env_ids: list[str] = field(default_factory=list)  # datasets: the env ids read from this folder
    tasks: list[str] = field(default_factory=list)  # lm-eval: hub tasks named explicitly
    tiers: list[str] = field(default_factory=list)  # lm-eval: catalog tiers
    used_by: list[str] = field(default_factory=list)  # run ids reading it
    within: str | None = None  # benchmarks: the folder the evaluator searches (by file name, at any depth)
    licence: str | None = None  # models: the study's licence for the weights, where the hub's card names none

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.path}"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


def _checkpoint_paths(study: StudyDef | None, cluster: str) -> dict[str, tuple[str, str | None, str | None]]:
    """model path -> (checkpoint key, repo id, licence) for every checkpoint with a path on this cluster."""
    from stages.study.paths import expanded, model_path

    out: dict[str, tuple[str, str | None, str | None]] = {}
    for key, ck in (study.models.checkpoints.items() if study else []):
        try:
            path = model_path(study, key, cluster)
            out.setdefault(path, (key, ck.repo_id, ck.licence))
            out.setdefault(expanded(path), (key, ck.repo_id, ck.licence))  # as judge params name it
        except StudyError:
            continue
    return out


def _add(items: dict[str, Item], item: Item, run_id: str) -> Item:
    found = items.setdefault(item.key, item)
    if run_id not in found.used_by:
        found.used_by.append(run_id)
    return found


def _model(items, checkpoints, path: str, run_id: str) -> None:
    key, repo, licence = checkpoints.get(path, (PurePosixPath(path).name, None, None))
    _add(items, Item("model", key, path, repo, licence=licence), run_id)


def _env_of(run: Any, name: str) -> str | None:
    params = run.manifest["spec"]["params"]
    if run.stage == "collector":
        return params.get("env_id")
    if run.stage == "evaluator" and name == "target_data":
        return params.get("target_env_id")
    return None


def needed_items(plan: Plan, study: StudyDef | None = None) -> list[Item]:
    """Every item the plan's runs read, in a stable order (models, datasets, benchmarks, lm-eval data)."""
    from stages.envs.registry import env_spec

    checkpoints = _checkpoint_paths(study, plan.cluster)
    items: dict[str, Item] = {}
    lm_tasks: list[str] = []
    lm_tiers: list[str] = []
    lm_users: list[str] = []
    for run in plan.runs.values():
        spec = run.manifest["spec"]
        for name, ref in spec["inputs"].items():
            path, kind = ref.get("uri"), ref.get("kind")
            if not path:
                continue
            if kind == "hf_model":
                _model(items, checkpoints, path, run.run_id)
            elif kind == "gem_dataset":
                env = _env_of(run, name)
                item = _add(items, Item("dataset", PurePosixPath(path).name, path), run.run_id)
                if env and env not in item.env_ids:
                    item.env_ids.append(env)
                    item.source = env_spec(env).hf_dataset
                    item.name = ", ".join(item.env_ids)
            elif kind == "benchmark_data" and run.stage == "evaluator":
                for bench in benchmarks_read(spec["params"]):
                    src = BENCHMARKS[bench]
                    _add(items, Item("benchmark", bench, f"{path.rstrip('/')}/{src.dest}",
                                     src.repo_id or src.package, within=path), run.run_id)
        if run.stage == "evaluator":
            for param in JUDGE_PARAMS:
                if spec["params"].get(param):
                    _model(items, checkpoints, spec["params"][param], run.run_id)
            tasks, tiers = evaluator_tasks(spec["params"])
            if hub_tasks(tasks) or tiers:
                lm_tasks += hub_tasks(tasks)
                lm_tiers += tiers
                lm_users.append(run.run_id)
    if lm_users:
        item = Item("lm-eval", "datasets", "$HF_HOME", None, tasks=list(dict.fromkeys(lm_tasks)),
                    tiers=sorted(set(lm_tiers)), used_by=lm_users)
        item.name = ", ".join([*(f"tier {t}" for t in item.tiers), *item.tasks])
        items[item.key] = item
    order = {"model": 0, "dataset": 1, "benchmark": 2, "lm-eval": 3}
    return sorted(items.values(), key=lambda i: (order[i.kind], i.path))
