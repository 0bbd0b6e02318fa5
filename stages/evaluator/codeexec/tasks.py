"""lm-eval's code tasks, configured to score in the sandbox, and what their item records say about how code ran.

A task whose YAML says ``unsafe_code: true`` (humaneval, humaneval_instruct, mbpp, mbpp_plus_instruct, ...) is
loaded from the same YAML (``include`` resolved, every prompt, target, generation and filter setting kept) with two
changes: its metric is ``runner.pass_at_k`` / ``runner.pass_at_1`` (same name, same result, the program runs in the
sandbox) and ``unsafe_code`` is off (nothing runs in-process). Its other functions (filters such as
``build_predictions_instruct``, mbpp's few-shot samples) are lm-eval's own, taken from its ``utils.py`` without
running that module's top level, which loads HF's ``code_eval`` (a hub download) and runs a program in-process.

With ``allow_unsafe_code`` the task is loaded by name, as lm-eval ships it, and ``HF_ALLOW_CODE_EVAL=1`` is set while
lm-eval loads and scores it (its metric needs HF's ``code_eval`` in the HF modules cache).
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from stages.evaluator.codeexec import IN_PROCESS, SANDBOX, runner

__all__ = ["IN_PROCESS", "SANDBOX", "annotate", "execution_of", "in_process_code_eval", "lm_eval_utils",
           "runs_code_in_process", "sandboxed_config", "task_specs"]
META_KEY = "fllm_code_execution"  # set in a task config's metadata: how that task's code runs
SANDBOXED_METRICS: dict[str, Callable[..., Any]] = {"pass_at_k": runner.pass_at_k, "pass_at_1": runner.pass_at_1}


class UnsupportedCodeTask(ValueError):
    """A task that runs model code in-process through a metric the sandbox does not reproduce."""


@cache
def lm_eval_functions(utils_path: Path) -> dict[str, Callable[..., Any]]:
    """The functions defined in one of lm-eval's task ``utils.py``, without running its other top-level code.

    Only the module's imports and ``def`` statements are executed (the same source, so the same functions).
    """
    tree = ast.parse(utils_path.read_text(encoding="utf-8"), str(utils_path))
    keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))]
    namespace: dict[str, Any] = {"__name__": f"fllm_lm_eval_utils.{utils_path.parent.name}"}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(utils_path), "exec"), namespace)  # noqa: S102
    return {n.name: namespace[n.name] for n in keep if isinstance(n, ast.FunctionDef)}


def lm_eval_utils(folder: str) -> dict[str, Callable[..., Any]]:
    """The functions of ``lm_eval/tasks/<folder>/utils.py`` (see ``lm_eval_functions``)."""
    import importlib.util

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("lm-eval is not installed")
    return lm_eval_functions(Path(spec.origin).parent / "tasks" / folder / "utils.py")


def _function_ref(value: str) -> tuple[Path, str] | None:
    """A YAML ``!function module.name`` as lm-eval's loader leaves it unresolved (``<yaml dir>/module.name``)."""
    base, _, name = value.rpartition(".")
    if not name or not os.path.isabs(base):
        return None
    path = Path(base + ".py")
    return (path, name) if path.is_file() else None


def _swap(value: Any, in_metric: bool = False) -> Any:
    """``value`` with every function reference resolved: metrics to the sandboxed ones, the rest to lm-eval's."""
    if isinstance(value, dict):
        return {k: _swap(v, in_metric or k == "metric_list") for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, in_metric) for v in value]
    ref = _function_ref(value) if isinstance(value, str) else None
    if ref is None:
        return value
    path, name = ref
    if in_metric:
        if name not in SANDBOXED_METRICS:
            raise UnsupportedCodeTask(f"metric {name} of {path} runs model code in-process and has no sandboxed "
                                      f"counterpart (known: {', '.join(SANDBOXED_METRICS)})")
        return SANDBOXED_METRICS[name]
    return lm_eval_functions(path)[name]


def sandboxed_config(yaml_path: Path) -> dict[str, Any]:
    """The task config of lm-eval's YAML at ``yaml_path``, scored in the sandbox (an inline config for ``load``)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    raw = load_yaml(yaml_path, resolve_func=False)
    cfg = _swap(raw)
    cfg["unsafe_code"] = False
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    cfg["metadata"] = {**meta, META_KEY: SANDBOX}
    return cfg


def runs_code_in_process(manager: Any, name: str) -> Path | None:
    """The YAML of ``name`` when lm-eval would run model code in-process for it (``unsafe_code: true``)."""
    entry = manager.task_index.get(name)
    if entry is None or entry.yaml_path is None:
        return None
    from lm_eval.tasks._yaml_loader import load_yaml

    return entry.yaml_path if load_yaml(entry.yaml_path, resolve_func=False).get("unsafe_code") else None


def task_specs(manager: Any, names: Sequence[str], allow_unsafe_code: bool) -> dict[str, str | dict[str, Any]]:
    """What to hand lm-eval's ``TaskManager.load`` per name: the name, or the sandboxed config of a code task."""
    specs: dict[str, str | dict[str, Any]] = {}
    for name in names:
        yaml_path = None if allow_unsafe_code else runs_code_in_process(manager, name)
        specs[name] = name if yaml_path is None else sandboxed_config(Path(yaml_path))
    return specs


def execution_of(task: Any) -> str | None:
    """How a loaded lm-eval task runs model code: "sandbox", "lm-eval-in-process", or None (it runs none)."""
    meta = task.config.metadata if isinstance(task.config.metadata, dict) else {}
    if meta.get(META_KEY):
        return str(meta[META_KEY])
    return IN_PROCESS if task.config.unsafe_code else None


@contextmanager
def in_process_code_eval(enabled: bool) -> Iterator[None]:
    """``HF_ALLOW_CODE_EVAL=1`` inside (lm-eval's own code metrics refuse to load or score without it)."""
    if not enabled:
        yield
        return
    saved = os.environ.get("HF_ALLOW_CODE_EVAL")
    os.environ["HF_ALLOW_CODE_EVAL"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HF_ALLOW_CODE_EVAL", None)
        else:
            os.environ["HF_ALLOW_CODE_EVAL"] = saved


def sample_outcomes(sample: dict[str, Any]) -> list[str | None]:
    """The sandbox's outcome for each candidate program of one logged lm-eval sample (None: not run here)."""
    filtered = (sample.get("filtered_resps") or [None])[0]
    candidates = filtered if isinstance(filtered, list) else [filtered]
    test = str(sample.get("target") or "")
    run = runner.default_runner()
    return [None if c is None else run.outcome_of(runner.check_program(str(c), test)) for c in candidates]


def annotate(records: Sequence[Any], samples: Sequence[dict[str, Any]], how: str) -> None:
    """Say in each item record how its code ran; with the sandbox, also each candidate's outcome ("passed",
    "failed: <exception>", "timed out") under ``extra["code_results"]``."""
    by_doc = {str(s["doc_id"]): s for s in samples}
    for record in records:
        record.extra["code_execution"] = how
        sample = by_doc.get(record.item_id)
        if how == SANDBOX and sample is not None:
            record.extra["code_results"] = sample_outcomes(sample)
