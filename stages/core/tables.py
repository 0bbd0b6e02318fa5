"""Reading one table file a user hands a stage (.parquet or its .jsonl twin) into rows, with input errors.

Why one reader: the three stages that take an ``rl_prompts`` file (grpo-trainer, spin, pi-distill) must refuse the
same bad files the same way before anything runs: a path that is no file, a parquet that does not open, a line
that is not JSON, a format that is neither. What the rows must hold differs per stage and stays with the stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stages.core.errors import InputError


def read_rows(path: Path, where: str) -> tuple[list[str] | None, list[Any]]:
    """(column names, rows) of a .parquet file, or (None, rows) of a .jsonl/.json file (one JSON value a line,
    blank lines skipped); ``InputError`` at ``where`` for anything unreadable."""
    if not path.is_file():
        raise InputError(f"{path} is not a file (an rl_prompts input is one .parquet or .jsonl file)", where)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:  # noqa: BLE001 - an unreadable file is the user's input problem
            raise InputError(f"{path} is not a readable parquet file: {e}", where) from None
        return table.column_names, table.to_pylist()
    if suffix in (".jsonl", ".json"):
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise InputError(f"{path} line {n} is not JSON: {e.msg}", where) from None
        return None, rows
    raise InputError(f"{path}: unknown prompts format {suffix!r}; give a .parquet (verl RL parquet) or .jsonl", where)
