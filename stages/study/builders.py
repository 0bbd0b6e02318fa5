"""Build each kind of planned run (collector, trainer, evaluator, analyzer, extra) from the study and the catalog.

Each builder returns a ``PlannedRun`` whose manifest is plain JSON: inputs are model/dataset folders on the chosen
cluster or links to an upstream run's record (``<run_dir>/out/manifest.json#outputs.<name>``); params are layered
from the study (collection settings, method hyperparameters, size overrides, LoRA, one sweep point); resources from
the study's per-stage, per-size table; runtime carries seed, engine, thinking and W&B settings.

Shared runs: collector runs (teacher collections above all) and the untrained model's evaluations do not depend on
the study that plans them, so they live once under ``<root>/shared/<run_id>-<spec digest>``: every study (phase)
that plans the same spec plans the same folder, and the stage's own skip-by-spec-hash reuses the first one's work.
The digest covers what decides the work (stage, inputs, params, seed, engine, thinking), so a different spec under
the same run id gets a folder of its own. The study's name stays out of those manifests (W&B group ``shared``, no
``study`` label), so planning one phase never rewrites another's shared manifest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from stages.core.manifest import SCHEMA_ID
from stages.study.catalog import (
    BENCHMARK_SUITES,
    COLLECTOR_DATASET_INPUT,
    COLLECTOR_MODEL_INPUT,
    DATA_JOBS,
    EVAL,
    TARGET_SUITES,
    DataJob,
    Method,
)
from stages.study.dag import PlannedRun
from stages.study.definition import Student, StudyDef
from stages.study.errors import StudyError
from stages.study.merge import deep_merge
from stages.study.paths import dataset_path, expanded, join, local, model_path
from stages.study.staging.targets import target_problem, uses_ground_truth

TRAINER_STAGES = ("sft-trainer", "grpo-trainer", "spin", "pi-distill")
SHARED_DIR = "shared"


def link(run: PlannedRun, output: str) -> dict[str, str]:
    return {"from": f"{run.record_path}#outputs.{output}"}


def uri(path: str, kind: str) -> dict[str, str]:
    return {"uri": path, "kind": kind}


class Builder:
    def __init__(self, study: StudyDef, root: str, cluster: str):
        self.study = study
        self.root = root
        self.cluster = cluster
        self._kinds: dict[str, Any] = {}

    # --- shared pieces --------------------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> str:
        return join(self.root, self.study.study, run_id)

    def resources(self, stage: str, size: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        per_stage = self.study.resources.stages.get(stage, {})
        return deep_merge(
            self.study.resources.default, per_stage.get("default"), per_stage.get(size) if size else None, extra
        )

    def shared_dir(self, run_id: str, spec: dict[str, Any], stage: str) -> str:
        """``<root>/shared/<run_id>-<digest of the spec's work>``: the same folder for the same work in any study."""
        rt = spec["runtime"]
        work = {"stage": stage, "inputs": spec["inputs"], "params": spec["params"], "seed": rt["seed"],
                "engine": rt.get("engine"), "thinking": rt["thinking"]}
        digest = hashlib.sha256(json.dumps(work, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        return join(self.root, SHARED_DIR, f"{run_id}-{digest[:12]}")

    def runtime(self, stage: str, seed: int, engine: str | None = None, shared: bool = False) -> dict[str, Any]:
        group = SHARED_DIR if shared else self.study.study
        rt: dict[str, Any] = {
            "seed": seed,
            "thinking": self.study.thinking,
            "offline": True,
            "tracking": deep_merge({"group": group, "mode": "offline"}, self.study.tracking),
        }
        engine = engine or self.study.engines.get(stage)
        if engine:
            rt["engine"] = engine
        if self.study.checkpoint_every_minutes:
            rt["checkpoint_every_minutes"] = self.study.checkpoint_every_minutes
        return rt

    def make(self, stage: str, run_id: str, inputs: dict, params: dict, size: str | None, deps: list[str],
             seed: int, labels: dict | None = None, resources: dict | None = None, engine: str | None = None,
             command: list[str] | None = None, problems: list[str] | None = None, shared: bool = False) -> PlannedRun:
        shared = shared and self.study.shared_runs
        spec: dict[str, Any] = {
            "inputs": inputs,
            "params": params,
            "output_dir": "",
            "resources": self.resources(stage, size, resources),
            "runtime": self.runtime(stage, seed, engine, shared),
        }
        run_dir = self.shared_dir(run_id, spec, stage) if shared else self.run_dir(run_id)
        spec["output_dir"] = join(run_dir, "out")
        manifest = {"schema": SCHEMA_ID, "stage": stage, "run_id": run_id, "spec": spec}
        from stages.registry import BY_NAME

        image = BY_NAME[stage].image if stage in BY_NAME else None
        return PlannedRun(run_id, stage, manifest, tuple(dict.fromkeys(deps)), run_dir, command, image, size,
                          labels or {}, problems or [])

    def _path(self, fn, *args) -> tuple[str, list[str]]:
        """Resolve a path; on a missing cluster path keep a placeholder and remember the problem for later."""
        try:
            return fn(self.study, *args, self.cluster), []
        except StudyError as e:
            return "<missing>", [str(e)]

    def student_path(self, st: Student) -> tuple[str, list[str]]:
        return self._path(model_path, st.model)

    def size_of(self, st: Student) -> str:
        return self.study.models.checkpoints[st.model].size

    def student_id(self, st: Student) -> str:
        return st.id or f"{st.model.lower()}.{st.start.lower()}"

    # --- collector ------------------------------------------------------------------------------------------------
    def data_run(self, domain: str, train_env: str, job: DataJob) -> PlannedRun:
        ds, problems = self._path(dataset_path, train_env)
        inputs = {COLLECTOR_DATASET_INPUT: uri(ds, "gem_dataset")}
        params = deep_merge(
            self.study.collection.get("all"),
            self.study.collection.get(job.mode),
            {"mode": job.mode, "env_id": train_env},
        )
        size = None
        key = job.key
        if job.teacher:
            teacher = self.study.teachers[job.teacher]
            ck = self.study.models.checkpoints[teacher]
            tpath, more = self._path(model_path, teacher)
            problems += more
            inputs[COLLECTOR_MODEL_INPUT] = uri(tpath, "hf_model")
            params["teacher_id"] = ck.repo_id or teacher
            size = ck.size
        return self.make("collector", f"data.{domain}.{key}", inputs, params, size, [], self.study.data_seed,
                         labels={"domain": domain, "data": key}, problems=problems, shared=True)

    # --- trainers -------------------------------------------------------------------------------------------------
    def trainer_params(self, method: Method, size: str, point: dict[str, Any]) -> dict[str, Any]:
        from stages.study.merge import set_dotted

        params = deep_merge(
            self.study.hyperparameters.get(method.name),
            self.study.hyperparameters_by_size.get(size, {}).get(method.name),
            {"lora": self.study.lora} if self.study.lora else None,
        )
        for key, value in point.items():
            params = set_dotted(params, key, value)
        return params

    def train_run(self, st: Student, domain: str, method: Method, seed: int, point: dict[str, Any], suffix: str,
                  data: PlannedRun) -> PlannedRun:
        size = self.size_of(st)
        start, problems = self.student_path(st)
        run_id = f"{self.student_id(st)}.{domain}.{method.slug}.s{seed}{suffix}"
        inputs = {
            method.model_input: uri(start, "hf_model"),
            method.data_input: link(data, DATA_JOBS[method.data].output),
        }
        labels = {"method": method.name, "domain": domain, "start": st.start, "model_size": size, "seed": seed}
        params = self.trainer_params(method, size, point)
        if uses_ground_truth(method.name):
            kind = self.target_kind(data.manifest["spec"]["params"].get("env_id"),
                                    data.manifest["spec"]["inputs"][COLLECTOR_DATASET_INPUT]["uri"])
            if kind is not None:
                labels["target_kind"] = kind.kind
            problem = target_problem(method.name, domain, params, kind, self.study.answer_only_targets)
            problems = problems + ([problem] if problem else [])
        return self.make(method.stage, run_id, inputs, params, size, [data.run_id], seed, labels=labels,
                         problems=problems)

    def target_kind(self, env_id: str | None, path: str) -> Any:
        """What a ground-truth method trains on in the dataset at ``path`` (None: not readable here)."""
        if env_id is None or path == "<missing>":
            return None
        if path not in self._kinds:
            from stages.envs.solutions import target_kind

            try:
                self._kinds[path] = target_kind(local(path), env_id)
            except (StudyError, OSError, ValueError, ImportError):
                self._kinds[path] = None
        return self._kinds[path]

    # --- evaluator ------------------------------------------------------------------------------------------------
    def eval_params(self, suite: str, eval_env: str | None, labels: dict[str, Any], shared: bool = False,
                    extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
        """The params of an evaluator run (every suite's, the suite's own, ``extra``, the judges' folders on this
        cluster, its labels), and the judge paths that could not be resolved here."""
        ev = self.study.evaluation
        params = deep_merge(ev.params, ev.per_suite.get(suite), extra, {"suite": suite})
        problems: list[str] = []
        for param, key in ev.judges.items():
            path, more = self._path(model_path, key)
            params[param], problems = expanded(path), problems + more
        if suite in TARGET_SUITES and eval_env:
            params["target_env_id"] = eval_env
        study = None if shared and self.study.shared_runs else self.study.study
        params["labels"] = {k: v for k, v in {"study": study, **labels}.items() if v is not None}
        return params, problems

    def eval_inputs(self, suite: str, eval_env: str | None) -> tuple[dict[str, Any], list[str]]:
        inputs: dict[str, Any] = {}
        problems: list[str] = []
        if suite in TARGET_SUITES and eval_env:
            ds, problems = self._path(dataset_path, eval_env)
            inputs[EVAL.target_data] = uri(ds, "gem_dataset")
        if suite in BENCHMARK_SUITES and self.study.data.benchmarks:
            from stages.study.paths import absolute

            inputs[EVAL.benchmarks] = uri(absolute(self.study.data.benchmarks), "benchmark_data")
        return inputs, problems

    def base_eval(self, st: Student, suite: str, domain: str | None, eval_env: str | None,
                  replicate: int = 0) -> PlannedRun:
        """The starting checkpoint's evaluation; replicate 1, 2 ... are independent reruns (seed data_seed + r)."""
        size = self.size_of(st)
        start, problems = self.student_path(st)
        where = f".{domain}" if domain else ""
        again = f".rerun{replicate}" if replicate else ""
        run_id = f"{self.student_id(st)}.untrained{where}.eval-{suite}{again}"
        inputs, more = self.eval_inputs(suite, eval_env)
        inputs = {EVAL.model: uri(start, "hf_model"), **inputs}
        seed = self.study.data_seed + replicate
        labels = {"method": "BASE", "domain": domain, "start": st.start, "model_size": size, "seed": seed}
        params, judges = self.eval_params(suite, eval_env, labels, shared=True)
        return self.make("evaluator", run_id, inputs, params, size, [], seed, labels=labels,
                         problems=problems + more + judges, shared=True)

    def trained_eval(self, st: Student, trained: PlannedRun, method: Method, suite: str, eval_env: str,
                     base: PlannedRun | None, rerun: PlannedRun | None = None) -> PlannedRun:
        size = self.size_of(st)
        start, problems = self.student_path(st)
        inputs, more = self.eval_inputs(suite, eval_env)
        inputs = {EVAL.model: link(trained, method.model_output), EVAL.base_model: uri(start, "hf_model"), **inputs}
        deps = [trained.run_id]
        if base is not None:
            inputs[EVAL.base_results] = link(base, EVAL.results_output)
            deps.append(base.run_id)
            if rerun is not None:
                inputs[EVAL.base_rerun_results] = link(rerun, EVAL.results_output)
                deps.append(rerun.run_id)
        t_params = trained.manifest["spec"]["params"]
        labels = dict(trained.labels)
        labels.update(
            lr=(t_params.get("optim") or {}).get("lr"),
            engine=trained.manifest["spec"]["runtime"].get("engine"),
            base_run_id=base.run_id if base else None,
        )
        params, judges = self.eval_params(suite, eval_env, labels)
        return self.make("evaluator", f"{trained.run_id}.eval-{suite}", inputs, params, size, deps,
                         trained.manifest["spec"]["runtime"]["seed"], labels=labels, problems=problems + more + judges)

    # --- analyzer -------------------------------------------------------------------------------------------------
    def analyzer_run(self, evals: list[PlannedRun]) -> PlannedRun:
        title = self.study.description or f"Study {self.study.study}"
        params = deep_merge({"title": title}, self.study.analysis.params)
        inputs = {e.run_id: link(e, EVAL.results_output) for e in evals}
        return self.make("analyzer", "report", inputs, params, None, [e.run_id for e in evals], self.study.data_seed)
