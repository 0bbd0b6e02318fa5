"""What makes two evaluations comparable, and which suites and tasks a manifest asks for (no heavy imports).

The protocol is recorded in ``results.json``; a post-trained model is compared with its base only when the
protocols agree on everything that decides which items are scored and how they are prompted, decoded and scored
(``code_execution``: code tasks' programs run in the project's sandbox, or in lm-eval's process with
``allow_unsafe_code``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from stages.evaluator.codeexec import IN_PROCESS, SANDBOX
from stages.evaluator.lmeval.catalog import SAFETY_TASKS, tier_tasks

SUITES = ("forgetting", "policy", "safety", "target")


def suites_of(suite: str) -> list[str]:
    return list(SUITES) if suite == "all" else [suite]


def lm_eval_tasks(params: Any) -> list[str]:
    """The forgetting suite's task names as asked for: explicit ``tasks``, else the catalog's tiers."""
    return list(params.tasks) if params.tasks else tier_tasks(list(params.tiers))


def safety_tasks(params: Any) -> list[str]:
    return list(SAFETY_TASKS)


def protocol_of(spec: Any) -> dict[str, str | int | float | bool | None]:
    p = spec.params
    samples = None
    if p.samples:
        blob = json.dumps({k: sorted(set(v)) for k, v in sorted(p.samples.items())}, sort_keys=True)
        samples = "sha256:" + hashlib.sha256(blob.encode()).hexdigest()
    return {
        "tasks": ",".join(lm_eval_tasks(p)),
        "limit": p.limit,
        "subset_seed": p.subset_seed,
        "samples": samples,
        "num_fewshot": p.num_fewshot,
        "apply_chat_template": p.apply_chat_template,
        "fewshot_as_multiturn": p.fewshot_as_multiturn,
        "thinking": spec.runtime.thinking,
        "max_new_tokens": p.greedy.max_new_tokens,
        "target_template": p.target_template,
        "target_limit": p.target_limit,
        "code_execution": IN_PROCESS if p.allow_unsafe_code else SANDBOX,
    }
