"""Per-item scoring of the project's generative lm-eval tasks (``process_results: !function fllm_metrics.<name>``).

GSM8K: the final number of the response (after ``####`` when present, else the last number; ``\\boxed{}`` too)
equals the gold answer numerically. NQ-open: the short answer (``<answer>`` tag, else the first line) matches one
of the aliases after SQuAD-style normalisation (lower case, no punctuation, articles or extra spaces). Safety
tasks record the string-match refusal verdict; the evaluator re-scores them with the classifier a manifest picks.
HumanEval: lm-eval's humaneval_instruct filter and pass@k, the program run in the project's sandbox (``codeexec``).
"""

from __future__ import annotations

import re
import string
from typing import Any

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def _text(results: list[Any]) -> str:
    return str(results[0]) if results else ""


def _to_float(s: str) -> float | None:
    try:
        return float(s.replace(",", "").rstrip("."))
    except ValueError:
        return None


def extract_number(response: str) -> str | None:
    if "####" in response:
        response = response.split("####")[-1]
    boxed = _BOXED.findall(response)
    if boxed:
        response = boxed[-1]
    numbers = _NUMBER.findall(response)
    return numbers[-1] if numbers else None


def gsm8k_exact_match(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    found = extract_number(_text(results))
    gold, pred = _to_float(doc["answer"]), None if found is None else _to_float(found)
    return {"exact_match": float(pred is not None and gold is not None and abs(pred - gold) < 1e-6)}


def normalize_answer(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def short_answer(response: str) -> str:
    tagged = _ANSWER_TAG.findall(response)
    if tagged:
        return tagged[-1].strip()
    lines = [line for line in response.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def nq_exact_match(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    pred = normalize_answer(short_answer(_text(results)))
    return {"exact_match": float(any(pred == normalize_answer(a) for a in doc["answers"]))}


def refusal_string_match(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    from stages.evaluator.safety.refusal import is_refusal

    return {"refusal": float(is_refusal(_text(results)))}


def pass_at_k(references: list[str], predictions: list[list[str]], k: list[int] | int | None = None) -> dict[str, float]:
    """lm-eval's humaneval pass@k (``{"pass@1": ...}``), each check program run in the project's sandbox."""
    from stages.evaluator.codeexec import runner

    return runner.pass_at_k(references, predictions, k)


def build_predictions_instruct(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[list[str]]:
    """lm-eval's ``humaneval/utils.build_predictions_instruct`` itself: the prompt plus the response up to its ```."""
    from stages.evaluator.codeexec.tasks import lm_eval_utils

    return lm_eval_utils("humaneval")["build_predictions_instruct"](resps, docs)
