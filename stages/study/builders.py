"""Build each kind of planned run (collector, trainer, evaluator, analyzer, extra) from the study and the catalog.

Each builder returns a ``PlannedRun`` whose manifest is plain JSON: inputs are model/dataset folders on the chosen
cluster or links to an upstream run's record (``<run_dir>/out/manifest.json#outputs.<name>``); params are layered
from the study (collection settings, method hyperparameters, size overrides, LoRA, one sweep point); resources from
the study's per-stage, per-size table; runtime carries seed, engine, thinking and W&B settings.
"""

from __future__ import annotations

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
from stages.study.paths import dataset_path, join, model_path

TRAINER_STAGES = ("sft-trainer", "grpo-trainer", "spin", "pi-distill")


def link(run: PlannedRun, output: str) -> dict[str, str]:
    return {"from": f"{run.record_path}#outputs.{output}"}


def uri(path: str, kind: str) -> dict[str, str]:
    return {"uri": path, "kind": kind}


class Builder:
    def __init__(self, study: StudyDef, root: str, cluster: str):
        self.study = study
        self.root = root
        self.cluster = cluster

    # --- shared pieces --------------------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> str:
        return join(self.root, self.study.study, run_id)

    def resources(self, stage: str, size: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        per_stage = self.study.resources.stages.get(stage, {})
        return deep_merge(
            self.study.resources.default, per_stage.get("default"), per_stage.get(size) if size else None, extra
        )

    def runtime(self, stage: str, seed: int, engine: str | None = None) -> dict[str, Any]:
        rt: dict[str, Any] = {
            "seed": seed,
            "thinking": self.study.thinking,
            "offline": True,
            "tracking": deep_merge({"group": self.study.study, "mode": "offline"}, self.study.tracking),
        }
        engine = engine or self.study.engines.get(stage)
        if engine:
            rt["engine"] = engine
        if self.study.checkpoint_every_minutes:
            rt["checkpoint_every_minutes"] = self.study.checkpoint_every_minutes
        return rt

    def make(self, stage: str, run_id: str, inputs: dict, params: dict, size: str | None, deps: list[str],
             seed: int, labels: dict | None = None, resources: dict | None = None, engine: str | None = None,
             command: list[str] | None = None, problems: list[str] | None = None) -> PlannedRun:
        run_dir = self.run_dir(run_id)
        manifest = {
            "schema": SCHEMA_ID,
            "stage": stage,
            "run_id": run_id,
            "spec": {
                "inputs": inputs,
                "params": params,
                "output_dir": join(run_dir, "out"),
                "resources": self.resources(stage, size, resources),
                "runtime": self.runtime(stage, seed, engine),
            },
        }
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
                         labels={"domain": domain, "data": key}, problems=problems)

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
        return self.make(method.stage, run_id, inputs, self.trainer_params(method, size, point), size, [data.run_id],
                         seed, labels=labels, problems=problems)

    # --- evaluator ------------------------------------------------------------------------------------------------
    def eval_params(self, suite: str, eval_env: str | None, labels: dict[str, Any]) -> dict[str, Any]:
        ev = self.study.evaluation
        params = deep_merge(ev.params, ev.per_suite.get(suite), {"suite": suite})
        if suite in TARGET_SUITES and eval_env:
            params["target_env_id"] = eval_env
        params["labels"] = {k: v for k, v in {"study": self.study.study, **labels}.items() if v is not None}
        return params

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
        params = self.eval_params(suite, eval_env, labels)
        return self.make("evaluator", run_id, inputs, params, size, [], seed, labels=labels, problems=problems + more)

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
        params = self.eval_params(suite, eval_env, labels)
        return self.make("evaluator", f"{trained.run_id}.eval-{suite}", inputs, params, size, deps,
                         trained.manifest["spec"]["runtime"]["seed"], labels=labels, problems=problems + more)

    # --- analyzer -------------------------------------------------------------------------------------------------
    def analyzer_run(self, evals: list[PlannedRun]) -> PlannedRun:
        title = self.study.description or f"Study {self.study.study}"
        params = deep_merge({"title": title}, self.study.analysis.params)
        inputs = {e.run_id: link(e, EVAL.results_output) for e in evals}
        return self.make("analyzer", "report", inputs, params, None, [e.run_id for e in evals], self.study.data_seed)
