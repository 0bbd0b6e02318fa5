"""Where a SPIN run is, kept in one small file written atomically, and the chunked JSONL logs it points into.

Why: a requeued job must continue exactly where the previous attempt stopped, whichever phase it was in. An
iteration has three phases: ``generate`` (the current model answers the prompts, chunk by chunk, into
``pairs/iter-<t>.jsonl``), ``score`` (reference log-probs of the iteration's training pairs, chunk by chunk, into
``pairs/iter-<t>.reference.jsonl``) and ``train`` (the engine, which resumes from its own checkpoints). The state
holds the iteration, the phase, the next chunk and the byte length of the phase's log known to be good; a log is
cut back to that length on resume, so a chunk is never lost and never written twice. After the last iteration the
phase is ``done``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PHASES = ("generate", "score", "train", "done")
STATE_FILE = "spin_state.json"
# share of an iteration's time each phase takes, roughly, for the progress written to the manifest
_SPANS = {"generate": (0.0, 0.25), "score": (0.25, 0.35), "train": (0.35, 1.0), "done": (1.0, 1.0)}


@dataclass
class SpinState:
    iteration: int = 0
    phase: str = "generate"
    chunk: int = 0  # next chunk of the current phase
    bytes: int = 0  # good length of the current phase's log
    start_model: str = ""  # the model at the start of the current iteration (the reference)
    backend: str | None = None  # generation backend, fixed at the first generation
    prompts_kept: int = 0
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # per iteration: generation/score/train facts

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> SpinState | None:
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def advance(self, phase: str, **changes: Any) -> None:
        """Move to ``phase`` with a fresh chunk cursor."""
        assert phase in PHASES, phase
        self.phase, self.chunk, self.bytes = phase, 0, 0
        for key, value in changes.items():
            setattr(self, key, value)

    def progress(self, iterations: int, phase_fraction: float) -> float:
        """The whole run's progress when the current phase is ``phase_fraction`` done."""
        lo, hi = _SPANS[self.phase]
        return min(1.0, (self.iteration + lo + (hi - lo) * phase_fraction) / iterations)

    def iteration_stats(self, iteration: int) -> dict[str, Any]:
        return self.stats.setdefault(str(iteration), {})


class ChunkLog:
    """Append-only JSONL written a chunk at a time; ``bytes`` is the good length recorded in the state."""

    def __init__(self, path: Path, good_bytes: int) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as f:
            f.truncate(good_bytes)  # whatever a killed attempt wrote after its last checkpoint goes
        self.bytes = good_bytes
        self._f = open(path, "ab")

    def append(self, records: list[dict[str, Any]]) -> int:
        data = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
        self._f.write(data)
        self._f.flush()
        os.fsync(self._f.fileno())
        self.bytes += len(data)
        return self.bytes

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ChunkLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
