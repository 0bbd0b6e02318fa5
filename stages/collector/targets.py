"""Ground-truth SFT targets: the dataset's reference solution where it has one, otherwise a short response
built from the final answer in the form the project's template asks for (and the grader reads).

Which one a record holds is written in its ``target_kind`` (``reference_solution`` or ``templated_answer``), and
counted in ``stats.json``, so no one mistakes an answer-only target for a worked solution.
"""

from __future__ import annotations

from stages.envs.responses import reference_response, templated_answer


def ground_truth_response(item, qa_extract: str) -> tuple[str | None, str | None]:
    """(response, target_kind) for an item, or (None, None) when the item has neither."""
    if item.reference_solution:
        return reference_response(item.domain, item.reference_solution), "reference_solution"
    text = templated_answer(item.domain, item.ground_truth, qa_extract)
    return (text, "templated_answer") if text else (None, None)
