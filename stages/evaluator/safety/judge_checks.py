"""Preflight of the safety judges: a missing judge folder, a classifier folder without its card's prompt, or an
``openai`` judge without an endpoint stops the evaluator with exit 2 before any model is loaded or GPU time spent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.core.errors import InputError
from stages.evaluator.safety.cls_prompt import ClassifierPromptError, load_prompt

WHERE = "$.spec.params"


def check_judges(p: Any) -> None:
    served = p.judge_backend == "openai"
    if p.judge_model and not served and not (Path(p.judge_model) / "config.json").is_file():
        raise InputError(f"judge_model {p.judge_model} is not a local model folder (stage the judge model, or "
                         "serve it and set judge_backend openai)", f"{WHERE}.judge_model")
    if p.harmbench_classifier:
        folder = Path(p.harmbench_classifier)
        if not (folder / "config.json").is_file():
            raise InputError(f"harmbench_classifier {folder} is not a local model folder",
                             f"{WHERE}.harmbench_classifier")
        try:
            load_prompt(folder)
        except ClassifierPromptError as e:
            raise InputError(str(e), f"{WHERE}.harmbench_classifier") from None
    uses_model = (p.refusal_classifier == "judge") or bool(p.harmbench_classifier)
    if served and uses_model:
        e = p.judge_endpoint
        if not e.url():
            raise InputError(f"judge_backend openai needs judge_endpoint.base_url or ${e.base_url_env} set",
                             f"{WHERE}.judge_endpoint")
        if p.harmbench_classifier and e.server != "vllm":
            raise InputError("the HarmBench classifier through judge_backend openai needs judge_endpoint.server vllm "
                             "(its prompt goes as exact token ids)", f"{WHERE}.judge_endpoint.server")
