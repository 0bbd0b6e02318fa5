"""The RL prompt set: verl's RL parquet (or its JSONL twin), read and checked the same way for both engines.

Why check it ourselves: verl would only fail on a wrong column after Ray, vLLM and FSDP have started on the GPUs,
and the native engine would fail mid-run. Reading the file once before anything is written turns a prompts file
in the wrong schema into exit code 2 with a message naming the row and the column. The columns are verl's
(reference §3.4): ``data_source`` (routes the reward), ``prompt`` (chat messages), ``reward_model.ground_truth``
and an optional ``extra_info`` struct.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.core.errors import InputError
from stages.core.tables import read_rows

REQUIRED = ("data_source", "prompt", "reward_model")
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class PromptRow:
    """One training prompt: what the model sees and what the grader needs."""

    index: int
    data_source: str
    messages: list[dict[str, str]]
    ground_truth: Any
    extra_info: dict[str, Any] = field(default_factory=dict)


def _read_rows(path: Path, where: str) -> list[dict[str, Any]]:
    columns, rows = read_rows(path, where)
    if columns is None:  # JSONL: the first row's keys
        if not (rows and isinstance(rows[0], dict)):
            return rows
        columns = list(rows[0])
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InputError(_missing_message(path, missing, columns), where)
    return rows


def _missing_message(path: Path, missing: list[str], have: list[str]) -> str:
    hint = ""
    if "messages" in have:
        hint = " (this looks like SFT data with `messages`; GRPO needs the collector's `prompts` output)"
    return (
        f"{path} is not in verl's RL prompt schema: missing column(s) {', '.join(missing)}; it has "
        f"{', '.join(have) or 'none'}. Needed: data_source, prompt (chat messages), reward_model.ground_truth, "
        f"optional extra_info{hint}"
    )


def _row(raw: Any, i: int, path: Path, where: str) -> PromptRow:
    def bad(what: str) -> InputError:
        return InputError(f"{path} row {i}: {what}", where)

    if not isinstance(raw, dict):
        raise bad("is not an object")
    source = raw.get("data_source")
    if not isinstance(source, str) or not source:
        raise bad(f"`data_source` must be a non-empty string, got {source!r:.60}")
    messages = raw.get("prompt")
    if isinstance(messages, str):
        raise bad("`prompt` is a plain string; verl needs a list of chat messages [{role, content}, ...]")
    if not isinstance(messages, list) or not messages:
        raise bad(f"`prompt` must be a non-empty list of chat messages, got {type(messages).__name__}")
    for j, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise bad(f"`prompt[{j}]` must have string `role` and `content`")
        if m["role"] not in ROLES:
            raise bad(f"`prompt[{j}].role` is {m['role']!r}; roles are {', '.join(ROLES)}")
    if messages[-1]["role"] == "assistant":
        raise bad("`prompt` ends with an assistant message; the model writes that turn")
    reward = raw.get("reward_model")
    if not isinstance(reward, dict) or reward.get("ground_truth") is None:
        raise bad("`reward_model` must be a struct with a `ground_truth` (what the grader compares against)")
    extra = raw.get("extra_info") or {}
    if not isinstance(extra, dict):
        raise bad("`extra_info` must be a struct (or absent)")
    msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    return PromptRow(i, source, msgs, reward["ground_truth"], dict(extra))


def read_prompts(path: str | Path, where: str = "$.spec.inputs.prompts") -> list[PromptRow]:
    """Every row of a prompts file, checked; raises ``InputError`` naming the first bad row."""
    file = Path(path)
    rows = [_row(raw, i, file, where) for i, raw in enumerate(_read_rows(file, where))]
    if not rows:
        raise InputError(f"{file} holds no prompts", where)
    return rows
