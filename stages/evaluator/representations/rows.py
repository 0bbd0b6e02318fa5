"""Append-only JSONL row files: how the representations suite keeps each finished layer and matrix across a
preemption. A row is written (and flushed) as soon as it is computed; a requeued run reads the rows back and computes
only the missing ones. A last line cut off by a kill is ignored and recomputed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class Rows:
    def __init__(self, path: Path, key: tuple[str, ...]):
        self.path, self.key = path, key
        self.rows: dict[tuple, dict[str, Any]] = {}
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            self.rows[self._key(row)] = row
        if len(self.rows) < len(lines):  # drop a torn line so the next append starts on a line of its own
            path.write_text("".join(json.dumps(r) + "\n" for r in self.rows.values()), encoding="utf-8")

    def _key(self, row: dict[str, Any]) -> tuple:
        return tuple(row.get(k) for k in self.key)

    def has(self, **key: Any) -> bool:
        return self._key(key) in self.rows

    def add(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.rows[self._key(row)] = row

    def all(self) -> list[dict[str, Any]]:
        return list(self.rows.values())
