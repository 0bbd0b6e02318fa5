"""Ground-truth SFT targets: the dataset's reference solution where it has one, otherwise a short response
built from the final answer in the form the project's template asks for (and the grader reads).

Which one a record holds is written in its ``target_kind`` (``reference_solution`` or ``templated_answer``), and
counted in ``stats.json``, so no one mistakes an answer-only target for a worked solution.
"""

from __future__ import annotations

from typing import Any


def templated_answer(domain: str, ground_truth: dict[str, Any], qa_extract: str) -> str | None:
    if domain == "math":
        ans = ground_truth.get("answer")
        ans = ans[0] if isinstance(ans, list) else ans
        return None if ans is None else f"The answer is $\\boxed{{{ans}}}$."
    if domain == "qa":
        answers = ground_truth.get("answers") or []
        if not answers:
            return None
        return f"\\boxed{{{answers[0]}}}" if qa_extract == "boxed" else f"<answer>{answers[0]}</answer>"
    return None  # code: no program can be made from tests alone


def ground_truth_response(item, qa_extract: str) -> tuple[str | None, str | None]:
    """(response, target_kind) for an item, or (None, None) when the item has neither."""
    if item.reference_solution:
        text = item.reference_solution
        if item.domain == "code" and "```" not in text:
            text = f"```python\n{text.rstrip()}\n```"
        return text, "reference_solution"
    text = templated_answer(item.domain, item.ground_truth, qa_extract)
    return (text, "templated_answer") if text else (None, None)
