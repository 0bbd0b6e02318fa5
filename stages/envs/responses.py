"""Ground-truth responses: the text a model is trained toward when the target is the dataset's own answer.

Why here: the collector's GT-SFT targets and SPIN's chosen side must be the same text for the same item, or two
methods meant to learn from the ground truth would learn different things. A dataset's reference solution is used
as written (code wrapped in a ```python block, which the code grader reads); without one, an answer-only response
is built in the form the project's templates ask for and the graders read. Code has no templated answer: no
program can be made from tests alone.
"""

from __future__ import annotations

from typing import Any


def templated_answer(domain: str, ground_truth: dict[str, Any], qa_extract: str | None = None) -> str | None:
    """An answer-only response the domain's grader accepts, or None. QA uses ``qa_extract`` (``boxed`` or
    ``tag``), by default the one the ground truth records."""
    if domain == "math":
        answer = ground_truth.get("answer")
        answer = answer[0] if isinstance(answer, list) else answer
        return None if answer is None else f"The answer is $\\boxed{{{answer}}}$."
    if domain == "qa":
        answers = ground_truth.get("answers") or []
        if not answers:
            return None
        extract = qa_extract if qa_extract is not None else ground_truth.get("extract")
        return f"\\boxed{{{answers[0]}}}" if extract == "boxed" else f"<answer>{answers[0]}</answer>"
    return None


def reference_response(domain: str, solution: str) -> str:
    """A dataset's reference solution as a response: code without a fenced block gets one."""
    if domain == "code" and "```" not in solution:
        return f"```python\n{solution.rstrip()}\n```"
    return solution
