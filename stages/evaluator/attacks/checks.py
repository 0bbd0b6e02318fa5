"""What the attacks suite checks before any model is loaded (the evaluator's preflight calls this), so bad input
exits 2 with nothing written and no GPU time spent: the attacked checkpoint has a chat template (both attacks
optimise a user turn of the chat format), the HarmBench rows are there and hold every asked behaviour id, the judge
is usable (a ``harmbench_classifier`` folder with its card's prompt, or no classifier only with
``allow_refusal_fallback``), AutoDAN's mutate model and prototype file are usable, and nanoGCG is installed when GCG
is asked for. Files are looked at, never loaded into a model.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from stages.core.errors import InputError
from stages.evaluator.attacks.behaviours import UnknownBehaviours, load, select
from stages.evaluator.attacks.prototypes import PLACEHOLDER
from stages.evaluator.tasks.fllm_loaders import BenchmarkDataMissing

WHERE = "$.spec.params.attacks"


def has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    config = folder / "tokenizer_config.json"
    try:
        return bool(config.is_file() and json.loads(config.read_text()).get("chat_template"))
    except ValueError:
        return False


def read_prototypes(path: str) -> list[str]:
    """The prototype prompts of a JSON file (a list of strings with the placeholder)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"autodan.prototypes {path} is not a readable JSON file: {e}",
                         f"{WHERE}.autodan.prototypes") from None
    if not (isinstance(data, list) and data and all(isinstance(t, str) and PLACEHOLDER in t for t in data)):
        raise InputError(f"autodan.prototypes {path} must be a non-empty JSON list of strings, each holding "
                         f"{PLACEHOLDER}", f"{WHERE}.autodan.prototypes")
    return data


def check(p: Any, inputs: dict[str, Any]) -> None:
    a = p.attacks
    model = inputs.get("model")
    if model is not None and model.ready and not has_chat_template(Path(model.path)):
        raise InputError(f"the attacks suite needs a chat model: {model.path} has no chat template (attacks optimise "
                         "a user turn of the chat format; attack the post-trained or instruct checkpoint)",
                         "$.spec.inputs.model")
    bench = inputs.get("benchmarks")
    if bench is None or bench.ready:  # staged rows pending at plan time are checked when the run starts
        check_rows(p, bench.path if bench is not None else None)
    if not p.harmbench_classifier and not a.allow_refusal_fallback:
        raise InputError("the attacks suite judges completions with the HarmBench classifier: set "
                         "harmbench_classifier (a local folder), or attacks.allow_refusal_fallback to accept "
                         "refusal string matching (an upper bound)", "$.spec.params.harmbench_classifier")
    from stages.evaluator.safety.judge_checks import check_judges

    check_judges(p)
    if a.autodan.mutate_model and "autodan" in a.methods and not (Path(a.autodan.mutate_model) /
                                                                   "config.json").is_file():
        raise InputError(f"autodan.mutate_model {a.autodan.mutate_model} is not a local model folder",
                         f"{WHERE}.autodan.mutate_model")
    if a.autodan.prototypes and "autodan" in a.methods:
        read_prototypes(a.autodan.prototypes)
    if "gcg" in a.methods and importlib.util.find_spec("nanogcg") is None:
        raise InputError("GCG runs through nanoGCG, which is not installed: pip install --no-deps nanogcg==0.3.0 "
                         "(the evaluator image has it)", f"{WHERE}.methods")


def check_rows(p: Any, benchmarks: str | Path | None) -> None:
    a = p.attacks
    try:
        rows, _ = load(benchmarks, p.harmbench_split)
        select(rows, a.n_behaviours, a.seed, a.behaviour_ids, a.functional_categories)
    except BenchmarkDataMissing as e:
        raise InputError(f"attacks suite: {e}", "$.spec.inputs.benchmarks") from None
    except UnknownBehaviours as e:
        raise InputError(f"unknown HarmBench behaviour id(s) in the {p.harmbench_split} split (copyright "
                         f"behaviours cannot be attacked here): {e}", f"{WHERE}.behaviour_ids") from None
