"""The teacher's view: the student's prompt plus the privileged information, through a versioned template.

Why a versioned template: the teacher prompt decides what the teacher's samples look like, and those samples are
what both roles train on, so the exact wording is part of the method and must be reproducible (a study records
``privileged_template``; a new wording is a new version, never an edit of an old one). The wording asks for an
answer written from scratch, without quoting or mentioning the privileged text: a teacher that copies the
reference produces samples the student (which never sees it) cannot imitate, the very gap the KL term penalises.

What the privileged information is, per row (``privileged_source``): the reference solution in
``extra_info.reference_solution`` (worked GSM8K/MATH solutions, CodeContest programs), else the final answer from
the ground truth (a math answer, the QA alias list: NQ rows carry no solution). Code has no answer-only form.
"""

from __future__ import annotations

import json
from typing import Any

from stages.core.errors import InputError

TEMPLATES: dict[str, str] = {
    "v1": (
        "{question}\n\n"
        "You are also given privileged information that the person asking cannot see ({kind}):\n"
        "<privileged>\n{info}\n</privileged>\n\n"
        "Use it only to check your own reasoning. Answer the question above as if you had solved it yourself, "
        "in the format the question asks for: do not copy or quote the privileged information and do not mention "
        "that you were given it."
    ),
}
KINDS = {"reference_solution": "a reference solution", "answer": "the expected final answer"}


def _decode(ground_truth: Any) -> Any:
    if isinstance(ground_truth, str) and ground_truth[:1] in "{[":
        try:
            return json.loads(ground_truth)
        except json.JSONDecodeError:
            return ground_truth
    return ground_truth


def answer_text(domain: str, ground_truth: Any) -> str | None:
    """The final answer a row's ground truth holds, as text (None where there is none: code)."""
    from stages.envs import normalize_ground_truth

    if domain not in ("math", "qa"):
        return None
    truth = normalize_ground_truth(domain, _decode(ground_truth))
    if domain == "math":
        answers = truth["answer"] if isinstance(truth["answer"], list) else [truth["answer"]]
        return " or ".join(str(a) for a in answers)
    aliases = truth["answers"]
    return aliases[0] if len(aliases) == 1 else "any of: " + "; ".join(aliases)


def privileged_info(source: str, domain: str, ground_truth: Any, reference: Any) -> tuple[str, str] | None:
    """(kind, text) of a row's privileged information under ``source``, or None when the row has none."""
    ref = reference.strip() if isinstance(reference, str) else ""
    if source in ("reference_or_answer", "reference_solution") and ref:
        return "reference_solution", ref
    if source in ("reference_or_answer", "answer"):
        text = answer_text(domain, ground_truth)
        if text:
            return "answer", text
    return None


def teacher_messages(messages: list[dict[str, str]], kind: str, info: str, template: str) -> list[dict[str, str]]:
    """The student's chat with the privileged block added to its last user message."""
    if template not in TEMPLATES:
        raise InputError(f"unknown privileged_template {template!r}; known: {', '.join(TEMPLATES)}",
                         "$.spec.params.privileged_template")
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    out = [dict(m) for m in messages]
    out[last]["content"] = TEMPLATES[template].format(question=messages[last]["content"], kind=KINDS[kind], info=info)
    return out
