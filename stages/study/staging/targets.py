"""Which methods need worked solutions, and whether a study's training data gives them.

GT-SFT trains on the ground truth, SELF takes it as the chosen side of each pair, PI shows it to the teacher as
privileged information. On math and code a bare final answer (or, for code, nothing) is a different experiment from
training on worked solutions, so a run of these methods whose dataset is answer-only or missing solutions is
refused by ``study stage``, ``study plan`` and ``study check``, naming the dataset, unless the study says
``answer_only_targets: true``. QA's ground truth is its answer (NQ has no worked solutions), and PI with
``privileged_source: answer`` asks for the answer only; neither needs a worked solution. The target kind itself is
read from the staged data (``stages.envs.solutions.target_kind``) and recorded in the evaluations' labels.
"""

from __future__ import annotations

from typing import Any

NEEDS_WORKED_SOLUTION = {  # method -> what it trains on the ground truth
    "GT-SFT": "its SFT targets",
    "SELF": "the chosen side of its pairs",
    "PI": "the teacher's privileged information",
}
ANSWER_IS_GROUND_TRUTH = ("qa",)
OPT_IN_KEY = "answer_only_targets"


def uses_ground_truth(method: str) -> bool:
    return method in NEEDS_WORKED_SOLUTION


def needs_worked_solution(method: str, domain: str, params: dict[str, Any]) -> bool:
    if method not in NEEDS_WORKED_SOLUTION or domain in ANSWER_IS_GROUND_TRUTH:
        return False
    return not (method == "PI" and params.get("privileged_source") == "answer")


def target_problem(method: str, domain: str, params: dict[str, Any], kind: Any, opted_in: bool) -> str | None:
    """The refusal for one run, or None. ``kind`` is a ``stages.envs.solutions.TargetKind`` (None: not staged)."""
    if kind is None or kind.kind == "worked-solution" or opted_in or not needs_worked_solution(method, domain, params):
        return None
    instead = "answer-only targets" if kind.kind == "answer-only" else "no targets for the rows without one"
    return (f"{method} on {domain} trains {NEEDS_WORKED_SOLUTION[method]} on worked solutions, but dataset "
            f"{kind.env_id} at {kind.path} has {kind.kind} targets ({kind.with_solution} of {kind.rows} rows carry a "
            f"worked solution): stage the source's worked solutions with `study stage`, or set "
            f"`{OPT_IN_KEY}: true` in the study to train on {instead}")
