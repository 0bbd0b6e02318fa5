"""The trajectory log: streamed JSONL with a checkpoint of how far it is known to be good.

Records are appended a whole chunk at a time; after each chunk the file is flushed and fsynced and the state
(bytes written, positions done) is saved atomically. On resume the file is cut back to the saved length, so a
record is never lost and never doubled, wherever the previous attempt was killed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class CollectState:
    next_position: int  # the first position (in the seeded order) not yet written
    bytes_written: int
    records: int
    generate_seconds: float = 0.0
    wall_seconds: float = 0.0

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, start: int) -> CollectState:
        if path.exists():
            return cls(**json.loads(path.read_text()))
        return cls(next_position=start, bytes_written=0, records=0)


class TrajectoryLog:
    def __init__(self, path: Path, state: CollectState):
        self.path = path
        self.state = state
        with open(path, "ab") as f:
            f.truncate(state.bytes_written)  # drop whatever a killed attempt wrote after its last checkpoint
        self._f = open(path, "ab")

    def append(self, records: list[dict[str, Any]]) -> None:
        data = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
        self._f.write(data)
        self._f.flush()
        os.fsync(self._f.fileno())
        self.state.bytes_written += len(data)
        self.state.records += len(records)

    def close(self) -> None:
        self._f.close()


def read_records(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
