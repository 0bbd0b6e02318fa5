"""The SPIN training prompts: an ``rl_prompts`` file (verl's RL parquet, or its JSONL twin), read and checked once.

Why check every row before anything runs: SPIN needs, for every prompt, chat messages to sample from, a ground truth
to grade the model's own sample (the share of already-correct samples and the ``drop`` policy depend on it) and a
ground-truth *response* for the chosen side. A row missing any of these would otherwise surface after the first
iteration's generation; here it is exit code 2 with the row and the column named.

The chosen response is the row's ``extra_info.reference_solution``; with ``chosen_source=reference_or_templated``
a row without one gets a short answer-only response built from the ground truth, in the form the project's
templates ask for and the graders read (the same rule as the collector's GT-SFT targets, so SELF and GT-SFT train
toward the same text). Code has no templated answer: a code row needs its solution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.core.errors import InputError
from stages.core.tables import read_rows
from stages.envs.responses import reference_response, templated_answer

REQUIRED = ("data_source", "prompt", "reward_model")
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class PromptRow:
    """One training prompt with everything a pair needs."""

    position: int  # row number in the file: the stable key of the prompt across iterations
    index: Any  # extra_info.index when present (the dataset item), else the row number
    data_source: str  # the env id, which routes grading
    messages: list[dict[str, str]]
    ground_truth: Any
    chosen: str
    chosen_kind: str  # reference_solution | templated_answer
    extra_info: dict[str, Any] = field(default_factory=dict)


def _read_table(path: Path, where: str) -> list[dict[str, Any]]:
    names, rows = read_rows(path, where)
    if names is None:  # JSONL: every key any row has
        names = sorted({k for r in rows if isinstance(r, dict) for k in r})
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise InputError(
            f"{path} lacks the column(s) {', '.join(missing)}; an rl_prompts file has verl's RL columns "
            f"data_source, prompt (chat messages), reward_model.ground_truth and extra_info; it has {', '.join(names)}",
            where,
        )
    if not rows:
        raise InputError(f"{path} has no rows", where)
    return rows


def _messages(value: Any, n: int, where: str) -> list[dict[str, str]]:
    ok = isinstance(value, list) and value and all(
        isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in value
    )
    if not ok:
        raise InputError(f"row {n}: `prompt` must be a non-empty list of chat messages {{role, content}}, "
                         f"got {value!r:.120}", where)
    if value[-1]["role"] == "assistant":
        raise InputError(f"row {n}: `prompt` ends with an assistant message; the model writes that turn", where)
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _row(raw: Any, n: int, chosen_source: str, where: str) -> PromptRow:
    from stages.envs import EnvError, domain_of, normalize_ground_truth

    if not isinstance(raw, dict):
        raise InputError(f"row {n} is not an object", where)
    source = raw.get("data_source")
    try:
        domain = domain_of(str(source))
    except EnvError as e:
        raise InputError(f"row {n}: data_source {source!r} names no env the graders know ({e})", where) from None
    messages = _messages(raw.get("prompt"), n, where)
    reward = raw.get("reward_model")
    truth = reward.get("ground_truth") if isinstance(reward, dict) else None
    if truth is None or (isinstance(truth, str) and not truth.strip()):
        raise InputError(f"row {n} has no ground truth (reward_model.ground_truth): SPIN grades every own sample "
                         "against it", where)
    try:
        truth = normalize_ground_truth(domain, truth)
    except (EnvError, ValueError) as e:
        raise InputError(f"row {n}: reward_model.ground_truth is not a {domain} ground truth: {e}", where) from None
    extra = raw.get("extra_info") if isinstance(raw.get("extra_info"), dict) else {}
    solution = extra.get("reference_solution")
    if isinstance(solution, str) and solution.strip():
        chosen, kind = reference_response(domain, solution), "reference_solution"
    elif chosen_source == "reference_solution":
        raise InputError(f"row {n} has no extra_info.reference_solution, and chosen_source is reference_solution "
                         "(SPIN's chosen side is the ground-truth response)", where)
    else:
        chosen, kind = templated_answer(domain, truth), "templated_answer"
        if chosen is None:
            raise InputError(f"row {n} ({domain}) has no extra_info.reference_solution and no answer-only response "
                             "can be made from its ground truth: SPIN needs a ground-truth response", where)
    index = extra.get("index", n)
    return PromptRow(n, index, str(source), messages, truth, chosen, kind, dict(extra))


def read_prompts(path: str | Path, chosen_source: str, where: str = "$.spec.inputs.prompts") -> list[PromptRow]:
    """Every row of the file as a PromptRow, or an InputError naming the first bad row."""
    rows = _read_table(Path(path), where)
    return [_row(raw, n, chosen_source, where) for n, raw in enumerate(rows)]
