"""Reading and checking SFT rows: chat ``messages`` that end with the assistant answer to train on.

Why here and not in the engines: both engines train on the same rows, and every fault in them (an unreadable file,
no ``messages`` column, a conversation that does not end with the assistant, rows longer than ``max_length``) must
be found before a GPU is touched, with a message naming the row. Accepted layouts of an ``sft_data`` artifact: a
parquet file with a ``messages`` column (verl's schema, what the collector writes) or with string ``prompt`` and
``completion`` columns (the plan's layout, read as one user turn and one assistant turn), a folder of such files,
or JSONL whose records carry ``messages`` or ``prompt``/``completion`` strings.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stages.core.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

DATA = "$.spec.inputs.data"
MODEL = "$.spec.inputs.model"
Conversation = list[dict[str, Any]]


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in (".parquet", ".jsonl") and p.is_file())
        if not found:
            raise InputError(f"{path} holds no .parquet or .jsonl files", DATA)
        return found
    return [path]


def _parquet_rows(path: Path) -> list[Any]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - any reader fault means the same thing to the user
        raise InputError(f"{path} is not a readable parquet file ({e.__class__.__name__}: {e})", DATA) from None
    names = table.column_names
    if "messages" in names:
        return table.column("messages").to_pylist()
    if "prompt" in names and "completion" in names:  # the plan's single-turn layout
        return [_pair(p, c) for p, c in zip(table.column("prompt").to_pylist(), table.column("completion").to_pylist())]
    have = ", ".join(names) or "none"
    raise InputError(f"{path} has no `messages` column (columns: {have}); SFT data is chat messages", DATA)


def _pair(prompt: Any, completion: Any) -> Any:
    if isinstance(prompt, str) and isinstance(completion, str):
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    return None  # reported as a malformed row


def _jsonl_rows(path: Path) -> list[Any]:
    rows: list[Any] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path} line {n} is not JSON: {e.msg}", DATA) from None
            if isinstance(rec, dict) and "messages" in rec:
                rows.append(rec["messages"])
            elif isinstance(rec, dict) and _pair(rec.get("prompt"), rec.get("completion")):
                rows.append(_pair(rec["prompt"], rec["completion"]))
            else:
                raise InputError(f"{path} line {n} has neither `messages` nor string `prompt`/`completion`", DATA)
    return rows


def read_conversations(path: Path) -> list[Conversation]:
    """Every row's conversation, checked; ``InputError`` naming the first faulty rows otherwise."""
    raw: list[Any] = []
    for f in _files(path):
        raw += _jsonl_rows(f) if f.suffix == ".jsonl" else _parquet_rows(f)
    if not raw:
        raise InputError(f"{path} holds no rows: there is nothing to train on", DATA)
    rows, faults = [], []
    for i, conv in enumerate(raw):
        fault = conversation_fault(conv)
        if fault:
            faults.append(f"row {i}: {fault}")
        else:
            rows.append([{"role": m["role"], "content": m["content"]} for m in conv])
    if faults:
        shown = "; ".join(faults[:3]) + (f"; and {len(faults) - 3} more" if len(faults) > 3 else "")
        raise InputError(f"{len(faults)} of {len(raw)} rows are not valid chat conversations: {shown}", DATA)
    return rows


def conversation_fault(conv: Any) -> str | None:
    """Why ``conv`` cannot be trained on, or None. Same rules as ``stages.lm.chat.check_messages``."""
    from stages.lm.chat import ROLES

    if not isinstance(conv, (list, tuple)) or not conv:
        return f"`messages` must be a non-empty list of {{role, content}}, got {type(conv).__name__}"
    for j, m in enumerate(conv):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            return f"message {j} must have string `role` and `content`, got {str(m)[:60]!r}"
        if m["role"] not in ROLES:
            return f"message {j} has role {m['role']!r}; roles are {', '.join(ROLES)}"
    if conv[-1]["role"] != "assistant":
        return f"the last message is {conv[-1]['role']!r}; SFT trains on a final `assistant` message"
    if not conv[-1]["content"].strip():
        return "the final assistant message is empty"
    return None


@dataclass(frozen=True)
class Lengths:
    """Token counts of each row as trained (full sequence) and of its prompt part alone."""

    total: list[int]
    prompt: list[int]


@functools.lru_cache(maxsize=4)
def load_tokenizer(model_dir: Path) -> PreTrainedTokenizerBase:
    """The model folder's tokenizer, which must carry a chat template (cached: ``validate`` then ``run`` in one
    process load it once)."""
    from transformers import AutoTokenizer

    folder = Path(model_dir)
    if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        raise InputError(f"{folder} has no tokenizer files (tokenizer.json / tokenizer_config.json)", MODEL)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"cannot load a tokenizer from {folder} ({e.__class__.__name__}: {e})", MODEL) from None
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(f"the tokenizer in {folder} has no chat template; SFT rows are chat conversations", MODEL)
    return tokenizer


def token_lengths(rows: list[Conversation], tokenizer: PreTrainedTokenizerBase, thinking: bool) -> Lengths:
    """Lengths under the project's chat format (``stages.lm.chat``), exactly as both engines tokenize."""
    from stages.lm.chat import ChatFormat
    from stages.lm.errors import ChatFormatError

    fmt = ChatFormat(thinking=thinking)
    total, prompt = [], []
    for i, conv in enumerate(rows):
        try:
            enc = fmt.encode(tokenizer, conv)
        except ChatFormatError as e:
            raise InputError(f"row {i} cannot be formatted with the model's chat template: {e}", DATA) from None
        total.append(len(enc.input_ids))
        prompt.append(enc.prompt_length)
    return Lengths(total, prompt)
