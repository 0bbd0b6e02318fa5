"""lm-eval's Python API, the way the evaluator uses it: one model object for every call, the project's task folder
on the include path, pinned item subsets, per-sample logs, and lm-eval's own result files kept.

Why one model object: the forgetting, diversity and safety runs differ only in tasks and generation settings, and
loading a checkpoint (or starting vLLM) once saves minutes per checkpoint. Qwen3 thinking: lm-eval's HF backend
refuses log-likelihood tasks with ``enable_thinking`` on, and the methods reference wants thinking off for tier A
anyway, so ``thinking_mode`` switches the template flag per call. Few-shot examples use lm-eval's fixed few-shot
seed whatever the run's seed, so a base model re-evaluated with another seed (the noise flip rate) sees the same
prompts.
"""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.evaluator.tasks import TASKS_DIR, project_task_names

log = logging.getLogger("stages.evaluator.lmeval")

THINK_END = "</think>"
FEWSHOT_SEED = 1234  # lm-eval's default: the same few-shot examples for every checkpoint and seed


class UnknownTask(ValueError):
    """A task name that neither lm-eval nor the project's task folder knows."""


@dataclass(frozen=True)
class BackendSpec:
    model_dir: str
    engine: str = "hf"  # "hf" | "vllm"
    dtype: str = "auto"
    batch_size: int = 8
    thinking: bool = False
    seed: int = 0
    gpus: int = 0
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_lm(spec: BackendSpec) -> Any:
    """The lm-eval model object for ``spec`` (HF on CPU or one GPU, vLLM with tensor parallelism at scale)."""
    from lm_eval.api.registry import get_model

    device = _device()
    dtype = spec.dtype if spec.dtype != "auto" else ("bfloat16" if device == "cuda" else "float32")
    args: dict[str, Any] = {"pretrained": spec.model_dir, "dtype": dtype, "enable_thinking": spec.thinking}
    if spec.thinking:
        args["think_end_token"] = THINK_END
    if spec.engine == "hf":
        name = "hf"
    elif spec.engine == "vllm":
        name = "vllm"
        args.update(tensor_parallel_size=max(1, spec.gpus), gpu_memory_utilization=spec.gpu_memory_utilization,
                    seed=spec.seed)
        if spec.max_model_len:
            args["max_model_len"] = spec.max_model_len
    else:
        raise ValueError(f"unknown evaluator engine {spec.engine!r}; use hf or vllm")
    log.info("lm-eval %s backend on %s: %s", name, device, args)
    return get_model(name).create_from_arg_obj(args, {"batch_size": spec.batch_size, "device": device})


@contextmanager
def thinking_mode(lm: Any, on: bool) -> Iterator[None]:
    """Switch Qwen3 thinking for the calls inside (both lm-eval backends read these two attributes)."""
    saved = (getattr(lm, "enable_thinking", None), dict(getattr(lm, "chat_template_args", {}) or {}))
    lm.enable_thinking = on
    if hasattr(lm, "chat_template_args"):
        lm.chat_template_args = {**(lm.chat_template_args or {}), "enable_thinking": on}
    try:
        yield
    finally:
        lm.enable_thinking = saved[0]
        if hasattr(lm, "chat_template_args"):
            lm.chat_template_args = saved[1]


def make_task_manager(names: list[str], benchmarks: str | None, metadata: dict[str, Any] | None = None) -> Any:
    """A TaskManager over lm-eval's tasks (skipped when only project tasks are asked for: 6 s saved) and ours."""
    from lm_eval.tasks import TaskManager

    meta = {"fllm_benchmarks": benchmarks or ""} | (metadata or {})
    only_ours = set(names) <= set(project_task_names())
    return TaskManager(include_path=str(TASKS_DIR), include_defaults=not only_ours, metadata=meta)


@dataclass
class TaskSet:
    """Loaded lm-eval tasks: per requested name, the objects to evaluate and its leaf tasks (kinds and sizes)."""

    by_name: dict[str, list[Any]] = field(default_factory=dict)  # requested name -> Task/Group objects
    groups: dict[str, list[str]] = field(default_factory=dict)  # requested name -> leaf task names
    leaves: dict[str, Any] = field(default_factory=dict)  # leaf name -> Task
    kinds: dict[str, str] = field(default_factory=dict)  # leaf -> "mc" | "gen"
    sizes: dict[str, int] = field(default_factory=dict)  # leaf -> number of eval documents
    code_execution: dict[str, str] = field(default_factory=dict)  # leaf -> "sandbox" | "lm-eval-in-process"
    manager: Any = None  # the TaskManager that loaded them: handed to simple_evaluate, which otherwise indexes
    # every lm-eval task again on each call (6-10 s a call on 2 cores)

    @property
    def objects(self) -> list[Any]:
        return [obj for objs in self.by_name.values() for obj in objs]

    def kind_of(self, name: str) -> str:
        """"mc" if every leaf of ``name`` is scored by log-likelihood, else "gen"."""
        return "mc" if all(self.kinds[leaf] == "mc" for leaf in self.groups[name]) else "gen"

    def subset(self, names: list[str]) -> TaskSet:
        leaves = {leaf for n in names for leaf in self.groups[n]}
        return TaskSet(
            by_name={n: self.by_name[n] for n in names},
            groups={n: self.groups[n] for n in names},
            leaves={k: v for k, v in self.leaves.items() if k in leaves},
            kinds={k: v for k, v in self.kinds.items() if k in leaves},
            sizes={k: v for k, v in self.sizes.items() if k in leaves},
            code_execution={k: v for k, v in self.code_execution.items() if k in leaves},
            manager=self.manager,
        )


def load_tasks(manager: Any, names: list[str], specs: dict[str, str | dict[str, Any]] | None = None) -> TaskSet:
    """Load ``names``; ``specs`` may give an inline config to load instead of a name (a sandboxed code task)."""
    from stages.evaluator.codeexec.tasks import execution_of

    ts = TaskSet(manager=manager)
    for name in names:
        try:
            loaded = manager.load([(specs or {}).get(name, name)])
        except KeyError:
            raise UnknownTask(
                f"unknown lm-eval task {name!r}: not in lm-eval's registry nor in the project's tasks "
                f"({', '.join(project_task_names())})"
            ) from None
        if name in loaded["groups"]:
            ts.by_name[name] = [loaded["groups"][name]]
        elif name in loaded["tasks"]:
            ts.by_name[name] = [loaded["tasks"][name]]
        else:  # a tag: its tasks
            ts.by_name[name] = list(loaded["tasks"].values())
        ts.groups[name] = sorted(loaded["tasks"])
        ts.leaves.update(loaded["tasks"])
    for leaf, task in ts.leaves.items():
        ts.kinds[leaf] = "gen" if task.get_config("output_type") == "generate_until" else "mc"
        ts.sizes[leaf] = len(task.eval_docs)
        if (how := execution_of(task)) is not None:
            ts.code_execution[leaf] = how
    return ts


def select_items(
    sizes: dict[str, int], limit: int | None, seed: int | None, explicit: dict[str, list[int]] | None,
    default_subsets: dict[str, int | None] | None = None,
) -> tuple[dict[str, list[int]], dict[str, str]]:
    """Item indices per leaf task and a description of how they were chosen (compared across result sets).

    Order of precedence: explicit indices; ``limit`` (the first N, or N drawn with ``seed``); the catalog's default
    subset size (drawn with ``seed``, 0 when unset); else every item.
    """
    chosen: dict[str, list[int]] = {}
    how: dict[str, str] = {}
    for leaf, n in sorted(sizes.items()):
        if explicit and leaf in explicit:
            bad = [i for i in explicit[leaf] if not 0 <= i < n]
            if bad:
                raise ValueError(f"samples for {leaf!r} name items {bad[:5]} outside its {n} documents")
            chosen[leaf] = sorted(set(explicit[leaf]))
            how[leaf] = "indices:" + ",".join(map(str, chosen[leaf]))
            continue
        size = limit or (default_subsets or {}).get(leaf)
        if size is None or size >= n:
            chosen[leaf] = list(range(n))
            how[leaf] = "all"
        elif limit and seed is None:
            chosen[leaf] = list(range(size))
            how[leaf] = f"first:{size}"
        else:
            s = 0 if seed is None else seed
            chosen[leaf] = sorted(random.Random(f"{s}:{leaf}").sample(range(n), size))
            how[leaf] = f"random:{size}:seed={s}"
    return chosen, how


@dataclass
class CallSettings:
    apply_chat_template: bool = True
    fewshot_as_multiturn: bool = True
    num_fewshot: int | None = None
    seed: int = 0
    gen_kwargs: dict[str, Any] | None = None
    repeats: int | None = None  # generative tasks: samples per document
    confirm_run_unsafe_code: bool = False
    bootstrap_iters: int = 0
    use_cache: str | None = None  # sqlite request cache (greedy requests only): makes a rerun resume cheaply


def evaluate(lm: Any, tasks: TaskSet, items: dict[str, list[int]], settings: CallSettings,
             out_dir: Path | None) -> dict[str, Any]:
    """One ``simple_evaluate`` call; lm-eval's own result and sample files go to ``out_dir`` when given."""
    from lm_eval import simple_evaluate

    if settings.repeats:
        for task in tasks.leaves.values():
            if task.get_config("output_type") == "generate_until":
                task.set_config(key="repeats", value=settings.repeats)
    if settings.apply_chat_template and settings.num_fewshot and not settings.fewshot_as_multiturn:
        log.info("few-shot examples go in one user turn (fewshot_as_multiturn off)")
    results = simple_evaluate(
        model=lm,
        tasks=tasks.objects,
        samples={k: v for k, v in items.items() if k in tasks.leaves},
        log_samples=True,
        apply_chat_template=settings.apply_chat_template,
        fewshot_as_multiturn=settings.fewshot_as_multiturn and settings.apply_chat_template,
        num_fewshot=settings.num_fewshot,
        gen_kwargs=settings.gen_kwargs,
        random_seed=settings.seed,
        numpy_random_seed=settings.seed,
        torch_random_seed=settings.seed,
        fewshot_random_seed=FEWSHOT_SEED,
        bootstrap_iters=settings.bootstrap_iters,
        confirm_run_unsafe_code=settings.confirm_run_unsafe_code,
        use_cache=settings.use_cache,
        task_manager=tasks.manager,
    )
    if results is None:  # not rank 0
        return {}
    if out_dir is not None:
        _save(results, out_dir)
    return results


def _save(results: dict[str, Any], out_dir: Path) -> None:
    """lm-eval's own files (results_*.json, samples_<task>_*.jsonl), written by its EvaluationTracker."""
    from lm_eval.loggers import EvaluationTracker

    out_dir.mkdir(parents=True, exist_ok=True)
    tracker = EvaluationTracker(output_path=str(out_dir))
    tracker.general_config_tracker.model_name_sanitized = "model"
    copied = copy.deepcopy(results)  # the tracker rewrites samples in place while saving
    samples = copied.pop("samples", {})
    tracker.save_results_aggregated(results=copied, samples=samples)
    for task_name in copied.get("configs", {}):
        if task_name in samples:
            tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
