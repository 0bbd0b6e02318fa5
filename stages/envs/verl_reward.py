"""verl's custom reward function: `reward.custom_reward_function.path=<this file>`, name `compute_score`.

verl loads this file by path inside its reward workers (Ray actors) and calls `compute_score` with
keywords from worker threads, so grading must not rely on SIGALRM (ours does not). Code runs in the project's
sandbox in each worker, which refuses to run a program where the node cannot contain it unless the stage passed
its manifest's opt-in on (``FLLM_ALLOW_UNISOLATED_CODE=1``, inherited by the Ray workers). `data_source` is the
env id written in the RL parquet (or a bare domain), `ground_truth` is `reward_model.ground_truth`
(the JSON of `EnvItem.ground_truth`, or a raw answer). The returned dict has the same numeric keys for
every domain, so verl can log them side by side as `reward_extra_info`:
score (the reward: 1.0 or 0.0), correct, timeout, error, answered (an answer or code block was found).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

try:
    import stages.envs  # noqa: F401
except ImportError:  # loaded by file path from a checkout that is not installed: make `stages` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stages.envs.grade import default_graders
from stages.envs.verdict import ERROR, TIMEOUT

_UNANSWERED = {"no_boxed_answer", "no_answer", "no_code_block"}


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None, **kwargs: Any
) -> dict[str, float]:
    verdict = default_graders().grade(data_source, solution_str, ground_truth)
    return {
        "score": float(verdict.score),
        "correct": float(verdict.correct),
        "timeout": float(verdict.verdict == TIMEOUT),
        "error": float(verdict.verdict == ERROR),
        "answered": float(verdict.details.get("reason") not in _UNANSWERED),
    }


def to_verl_row(item: Any, split: str = "train") -> dict:
    """A row of verl's RL parquet for an `EnvItem`, with the ground truth in the form compute_score reads."""
    import json

    return {
        "data_source": item.env_id,
        "prompt": item.messages,
        "ability": item.domain,
        "reward_model": {"style": "rule", "ground_truth": json.dumps(item.ground_truth)},
        "extra_info": {"index": item.index, "split": split},
    }
