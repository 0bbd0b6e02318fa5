"""Checks made before anything runs or is written (the lifecycle turns a failure into exit 2): model folders that
cannot load, unknown task names, missing benchmark rows, suites without their inputs, and a base (or base rerun)
whose results were made on a different item subset or prompt format.

Only light work happens here: files are looked at, never loaded into a model; lm-eval is imported only when a task
name is neither in the catalog nor one of the project's tasks (its registry index takes a few seconds).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stages.core.errors import InputError
from stages.evaluator.comparison import check_protocol, load_results
from stages.envs.sandbox.gate import WHERE as ISOLATION_WHERE
from stages.envs.sandbox.gate import grades_code, in_process, refusal
from stages.evaluator.lmeval.catalog import SAFETY_TASKS, info, known_without_lm_eval
from stages.evaluator.protocol import lm_eval_tasks, protocol_of, suites_of
from stages.evaluator.tasks import project_task_names
from stages.evaluator.tasks.fllm_loaders import BenchmarkDataMissing, find_file, humaneval_rows_file

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")
PROJECT_FILES = {"fllm_gsm8k": "gsm8k", "fllm_gsm8k_mc": "gsm8k", "fllm_nq_open": "nq_open", "fllm_nq_mc": "nq_open",
                 "fllm_xstest": "xstest"}


def check_model_folder(path: Path, where: str) -> None:
    """A Hugging Face model folder: config.json that parses, weights, and a tokenizer."""
    if not path.is_dir():
        raise InputError(f"model folder {path} does not exist or is not a folder", where)
    config = path / "config.json"
    if not config.is_file():
        raise InputError(f"model folder {path} has no config.json: it is not a Hugging Face model folder", where)
    try:
        cfg = json.loads(config.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"model folder {path} does not load: config.json is not valid JSON ({e})", where) from None
    if not isinstance(cfg, dict) or not (cfg.get("model_type") or cfg.get("architectures")):
        raise InputError(f"model folder {path} does not load: config.json names no model_type", where)
    if not any(next(path.glob(p), None) for p in WEIGHT_PATTERNS):
        raise InputError(f"model folder {path} has no weights (*.safetensors or *.bin)", where)
    if not ((path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()):
        raise InputError(f"model folder {path} has no tokenizer (tokenizer.json / tokenizer_config.json)", where)


def check_task_names(names: list[str]) -> None:
    unknown = [n for n in names if not known_without_lm_eval(n)]
    if not unknown:
        return
    try:
        from lm_eval.tasks import TaskManager
    except ImportError:  # the evaluator image has lm-eval; a login node validating a manifest may not
        return
    from stages.evaluator.tasks import TASKS_DIR

    registry = set(TaskManager(include_path=str(TASKS_DIR)).all_tasks)
    missing = [n for n in unknown if n not in registry]
    if missing:
        raise InputError(
            f"unknown lm-eval task(s): {', '.join(missing)}; not in lm-eval's registry nor in the project's tasks "
            f"({', '.join(project_task_names())})", "$.spec.params.tasks"
        )


def _benchmarks(inputs: dict[str, Any]) -> Path | None:
    return inputs["benchmarks"].path if "benchmarks" in inputs else None


def check_benchmark_rows(tasks: list[str], inputs: dict[str, Any], harmbench_split: str) -> None:
    root = _benchmarks(inputs)
    for task in tasks:
        key = PROJECT_FILES.get(task)
        if task == "fllm_harmbench":
            from stages.evaluator.safety.harmbench_data import installed_dir

            key = f"harmbench_{harmbench_split}"
            if root is None or not list(root.rglob(f"harmbench_behaviors_text_{harmbench_split}.csv")):
                if installed_dir() is not None:
                    continue
        if task == "fllm_humaneval":
            try:
                humaneval_rows_file()
            except BenchmarkDataMissing as e:
                raise InputError(f"task {task}: {e}", "$.spec.params.tasks") from None
        if key is None:
            continue
        try:
            find_file(root, key)
        except BenchmarkDataMissing as e:
            raise InputError(f"task {task}: {e}", "$.spec.inputs.benchmarks") from None


def check_target(spec: Any, inputs: dict[str, Any]) -> None:
    p = spec.params
    if p.target_env_id is None:
        raise InputError("the target suite needs target_env_id (eval:MATH500, eval:CodeContest or "
                         "eval:NaturalQuestions)", "$.spec.params.target_env_id")
    if "target_data" not in inputs:
        raise InputError(f"the target suite needs the target_data input (the {p.target_env_id} gem_dataset folder)",
                         "$.spec.inputs")
    from stages.envs import DEFAULT_TEMPLATE, EnvError, open_env

    try:
        open_env(p.target_env_id, inputs["target_data"].path, template=p.target_template or DEFAULT_TEMPLATE)
    except EnvError as e:
        raise InputError(str(e), "$.spec.inputs.target_data") from None


def check_code_isolation(p: Any, lm_tasks: list[str], target: bool) -> None:
    """Code tasks and a code target run model-written code: only where the sandbox contains it, unless opted in
    (lm-eval's in-process execution, ``allow_unsafe_code``, contains nothing)."""
    code_tasks = [t for t in lm_tasks if info(t).runs_code]
    if p.allow_unsafe_code and code_tasks:
        if not p.allow_unisolated_code:
            raise InputError(f"allow_unsafe_code runs the code of {', '.join(code_tasks)} in lm-eval's own process, "
                             "with no isolation: set allow_unisolated_code too, or leave both off (the sandbox scores "
                             "them)", ISOLATION_WHERE)
        in_process("lm-eval in-process")
        return
    if (code_tasks or (target and grades_code([p.target_env_id or ""]))) and (why := refusal(p.allow_unisolated_code)):
        raise InputError(why, ISOLATION_WHERE)


def preflight(spec: Any, inputs: dict[str, Any]) -> None:
    from stages.evaluator.local_paths import with_local_paths

    p = with_local_paths(spec.params)
    engine = spec.runtime.engine or "hf"
    if engine not in ("hf", "vllm"):
        raise InputError(f"unknown evaluator engine {engine!r}; use hf or vllm", "$.spec.runtime.engine")
    # At plan time (`evaluator check`) a trained checkpoint and the base's results are pending: their own checks wait
    # for the runs that write them; everything else is checked now.
    for name in ("model", "base_model"):
        if name in inputs and inputs[name].ready:
            check_model_folder(inputs[name].path, f"$.spec.inputs.{name}")
    suites = suites_of(p.suite)
    lm_tasks: list[str] = []
    if "forgetting" in suites or "policy" in suites:
        lm_tasks = lm_eval_tasks(p)
        if "policy" in suites:
            lm_tasks.append(p.diversity_task)
        check_task_names(lm_tasks)  # code tasks need no switch: their programs run in the project's sandbox
    if "safety" in suites:
        lm_tasks += list(SAFETY_TASKS)
        from stages.evaluator.safety.judge_checks import check_judges

        check_judges(p)  # judge folders, the classifier card's prompt, an openai judge's endpoint
    check_benchmark_rows(lm_tasks, inputs, p.harmbench_split)
    check_code_isolation(p, lm_tasks, "target" in suites)
    if "representations" in suites:
        from stages.evaluator.representations.checks import check

        check(p, inputs)
    if "refusal_direction" in suites:
        from stages.evaluator.refusal.checks import check as check_refusal_direction

        check_refusal_direction(spec, inputs)
    if "attacks" in suites:
        from stages.evaluator.attacks.checks import check as check_attacks

        check_attacks(p, inputs)
    if "target" in suites:
        check_target(spec, inputs)
    elif "base_model" in inputs and not {"representations", "refusal_direction"} & set(suites):
        raise InputError("base_model is used for KL(base || post) on target prompts and by the representations "
                         "and refusal_direction suites: run the target, all, representations or refusal_direction "
                         "suite", "$.spec.inputs.base_model")
    protocol = protocol_of(spec)
    for label in ("base_results", "base_rerun_results"):
        if label in inputs and inputs[label].ready:
            base = load_results(inputs[label].path, label)
            check_protocol(base.results, protocol, label)
    if "base_rerun_results" in inputs and "base_results" not in inputs:
        raise InputError("base_rerun_results (the noise flip rate) needs base_results too", "$.spec.inputs")
