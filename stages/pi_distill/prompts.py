"""The prompt set: verl's RL parquet (or its JSONL twin) with privileged information for every row.

Why checked here, before anything is written: a file in the wrong schema, an unknown ``data_source``, a ground
truth the grader cannot read or a row without privileged information would otherwise stop the run after the model
loaded, or worse, train a teacher that sees nothing privileged. ``read_prompts`` names the first bad row and
column; rows without privileged information are all counted in one message. The columns are the collector's
``prompts`` output: ``data_source`` (the env id, which routes grading), ``prompt`` (chat messages),
``reward_model.ground_truth`` (JSON) and ``extra_info.reference_solution``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.core.errors import InputError
from stages.core.tables import read_rows
from stages.pi_distill.privileged import privileged_info, teacher_messages

REQUIRED = ("data_source", "prompt", "reward_model")
ROLES = ("system", "user", "assistant")
WHERE = "$.spec.inputs.prompts"


@dataclass(frozen=True)
class PromptRow:
    """One prompt in both views, and what the grader needs."""

    index: int
    data_source: str
    messages: list[dict[str, str]]  # the student's view
    teacher: list[dict[str, str]]  # the teacher's view: the same chat plus the privileged information
    privileged_kind: str  # reference_solution | answer
    ground_truth: Any


def _table(path: Path) -> list[dict[str, Any]]:
    columns, rows = read_rows(path, WHERE)
    if columns is None:  # JSONL: the first row's keys
        columns = list(rows[0]) if rows and isinstance(rows[0], dict) else []
    missing = [c for c in REQUIRED if c not in columns]
    if rows and missing:
        hint = " (this looks like SFT data; pi-distill needs the collector's `prompts` output)" \
            if "messages" in columns else ""
        raise InputError(
            f"{path} is not in verl's RL prompt schema: missing column(s) {', '.join(missing)}; it has "
            f"{', '.join(columns) or 'none'}. Needed: data_source, prompt (chat messages), "
            f"reward_model.ground_truth, extra_info.reference_solution{hint}", WHERE)
    return rows


def _check_row(raw: Any, i: int, path: Path) -> tuple[str, list[dict[str, str]], Any, dict[str, Any]]:
    from stages.envs import domain_of, normalize_ground_truth

    def bad(what: str) -> InputError:
        return InputError(f"{path} row {i}: {what}", WHERE)

    if not isinstance(raw, dict):
        raise bad("is not an object")
    source = raw.get("data_source")
    try:
        domain = domain_of(source) if isinstance(source, str) else None
    except ValueError:
        domain = None
    if domain is None:
        raise bad(f"`data_source` {source!r:.60} is not an env id the graders know (e.g. math:GSM8K)")
    messages = raw.get("prompt")
    if not isinstance(messages, list) or not messages:
        raise bad(f"`prompt` must be a non-empty list of chat messages, got {type(messages).__name__}")
    for j, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise bad(f"`prompt[{j}]` must have string `role` and `content`")
        if m["role"] not in ROLES:
            raise bad(f"`prompt[{j}].role` is {m['role']!r}; roles are {', '.join(ROLES)}")
    if messages[-1]["role"] != "user":
        raise bad("`prompt` must end with a user message (the model writes the next turn)")
    reward = raw.get("reward_model")
    if not isinstance(reward, dict) or reward.get("ground_truth") is None:
        raise bad("`reward_model` must be a struct with a `ground_truth` (what the grader compares against)")
    try:
        normalize_ground_truth(domain, reward["ground_truth"])
    except ValueError as e:
        raise bad(f"`reward_model.ground_truth` is not a {domain} ground truth: {e}") from None
    extra = raw.get("extra_info") or {}
    if not isinstance(extra, dict):
        raise bad("`extra_info` must be a struct (or absent)")
    msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    return domain, msgs, reward["ground_truth"], extra


def read_prompts(path: str | Path, source: str, template: str) -> list[PromptRow]:
    """Every row in both views; raises ``InputError`` for a bad row or for rows without privileged information."""
    file = Path(path)
    rows, lacking = [], []
    for i, raw in enumerate(_table(file)):
        domain, msgs, truth, extra = _check_row(raw, i, file)
        info = privileged_info(source, domain, truth, extra.get("reference_solution"))
        if info is None:
            lacking.append(i)
            continue
        kind, text = info
        rows.append(PromptRow(i, raw["data_source"], msgs, teacher_messages(msgs, kind, text, template), kind, truth))
    if lacking:
        shown = ", ".join(map(str, lacking[:10])) + (" ..." if len(lacking) > 10 else "")
        need = {"reference_solution": "a non-empty `extra_info.reference_solution`",
                "answer": "a math or QA answer in `reward_model.ground_truth`",
                "reference_or_answer": "a non-empty `extra_info.reference_solution` or a math/QA answer"}[source]
        raise InputError(
            f"{file}: {len(lacking)} of {len(lacking) + len(rows)} prompts have no privileged information "
            f"(rows {shown}): privileged_source {source!r} needs {need}. The teacher must see something the "
            "student does not; fix the prompt set (the collector's `prompts` mode keeps reference solutions) or "
            "choose another privileged_source", WHERE)
    if not rows:
        raise InputError(f"{file} holds no prompts", WHERE)
    return rows
