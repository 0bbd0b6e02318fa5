"""One JSON-safe ground-truth shape per domain, shared by the adapter, the graders and the verl parquet.

  math  {"answer": str | [str, ...]}               any listed answer counts (as in GEM's MathEnv)
  qa    {"answers": [str, ...], "extract": "tag"|"boxed"}   exact match against any alias
  code  {"tests": {"inputs": [str, ...], "outputs": [str, ...]}}   stdin/stdout pairs

`normalize_ground_truth` also accepts the raw dataset forms (a bare answer, an alias list, GEM's tests
dict or its JSON string) and a JSON string of any of the above, because verl hands `compute_score` the
parquet's `reward_model.ground_truth` as stored.
"""

from __future__ import annotations

import json
from typing import Any

from stages.envs.errors import GroundTruthError


def _decode(value: Any, keys: tuple[str, ...] | None = None) -> Any:
    """JSON-decode `value` if it is a JSON object (with one of `keys`, when given); else return it as is.

    Math and QA answers are free text ("[1, 2]" is an interval, not a list), so for them only a JSON
    object carrying the expected key is taken as a serialized ground truth.
    """
    if not (isinstance(value, str) and value[:1] in "{["):
        return value
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError:
        return value
    if keys is None or (isinstance(decoded, dict) and any(k in decoded for k in keys)):
        return decoded
    return value


def _str_answer(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise GroundTruthError(f"{what} must be a string or number, got {type(value).__name__}: {value!r:.80}")
    return str(value)  # GEM compares str(gt): 72.0 stays "72.0"


def math_truth(value: Any) -> dict:
    value = _decode(value, ("answer",))
    if isinstance(value, dict):
        if "answer" not in value:
            raise GroundTruthError(f"math ground truth needs an 'answer' key, got keys {sorted(value)}")
        value = value["answer"]
    if isinstance(value, (list, tuple)):
        if not value:
            raise GroundTruthError("math ground truth has an empty answer list")
        return {"answer": [_str_answer(v, "math answer") for v in value]}
    return {"answer": _str_answer(value, "math answer")}


def qa_truth(value: Any, extract: str = "tag") -> dict:
    value = _decode(value, ("answers", "answer"))
    if isinstance(value, dict):
        extract = value.get("extract", extract)
        value = value.get("answers", value.get("answer"))
        if value is None:
            raise GroundTruthError("qa ground truth needs an 'answers' key")
    if extract not in ("tag", "boxed"):
        raise GroundTruthError(f"qa extract mode must be 'tag' or 'boxed', got {extract!r}")
    aliases = list(value) if isinstance(value, (list, tuple)) else [value]
    if not aliases:
        raise GroundTruthError("qa ground truth has an empty alias list")
    return {"answers": [_str_answer(a, "qa alias") for a in aliases], "extract": extract}


def _as_test_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):  # GEM joins list-form tests with newlines
        return "\n".join(map(str, value))
    raise GroundTruthError(f"a code test input/output must be a string or list, got {type(value).__name__}")


def code_truth(value: Any) -> dict:
    value = _decode(value)
    if isinstance(value, dict) and "tests" in value:
        value = _decode(value["tests"])
    if isinstance(value, list):
        raise GroundTruthError("code tests as a list of dicts are not supported (GEM neither): use "
                               "{'inputs': [...], 'outputs': [...]}")
    if not isinstance(value, dict) or not {"inputs", "outputs"} <= set(value):
        raise GroundTruthError(f"code ground truth needs tests {{'inputs': [...], 'outputs': [...]}}, got {value!r:.120}")
    inputs, outputs = list(value["inputs"]), list(value["outputs"])
    if len(inputs) != len(outputs):
        raise GroundTruthError(f"code tests have {len(inputs)} inputs but {len(outputs)} outputs")
    if not inputs:
        raise GroundTruthError("code ground truth has no tests")
    return {"tests": {"inputs": [_as_test_text(x) for x in inputs], "outputs": [_as_test_text(x) for x in outputs]}}


def normalize_ground_truth(domain: str, value: Any, *, qa_extract: str = "tag") -> dict:
    if domain == "math":
        return math_truth(value)
    if domain == "qa":
        return qa_truth(value, qa_extract)
    if domain == "code":
        return code_truth(value)
    raise GroundTruthError(f"no ground truth shape for domain {domain!r}")
