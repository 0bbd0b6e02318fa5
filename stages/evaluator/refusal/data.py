"""The harmful and harmless instructions of the refusal-direction suite, drawn once per seed into three disjoint
sets (train: the difference in means; val: choosing the candidate; eval: projections and refusal rates).

Harmful: HarmBench's standard behaviours (both CSVs, 200 rows; MIT), the plain requests without a context string
and without the copyright ones, which ask for song lyrics rather than for harm. The paper pools AdvBench,
MaliciousInstruct, TDC2023 and HarmBench; HarmBench alone is what the project stages, and its standard behaviours
are the same kind of one-sentence request.
Harmless: the paper takes Alpaca's instructions without an input, but Alpaca is CC BY-NC 4.0; the project uses
databricks-dolly-15k instead (CC BY-SA 3.0, human-written, any use), its rows without a context, the same kind of
self-contained instruction. XSTest's safe prompts (CC BY 4.0) are the other choice, for tests: they are built to
sound harmful, so a direction from them is a weaker contrast.

Rows are read from the evaluator's ``benchmarks`` folder (``fllm_loaders.find_file``); the draw is a seeded shuffle
of each pool, so the sets are the same for every checkpoint of a study, and their digests are recorded.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.core.errors import InputError
from stages.evaluator.safety.harmbench_data import rows_file
from stages.evaluator.tasks.fllm_loaders import BenchmarkDataMissing, find_file

HARMFUL_SOURCE = "harmbench standard behaviours (test + val), MIT"
HARMLESS_SOURCES = {"dolly": "databricks-dolly-15k without context, CC BY-SA 3.0",
                    "xstest_safe": "XSTest v2 safe prompts, CC BY 4.0"}


@dataclass(frozen=True)
class InstructionSets:
    harmful: dict[str, list[str]]  # split (train, val, eval) -> instructions
    harmless: dict[str, list[str]]

    def digest(self, split: str) -> str:
        blob = json.dumps([self.harmful[split], self.harmless[split]], ensure_ascii=False)
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    @property
    def digests(self) -> dict[str, str]:
        return {s: self.digest(s) for s in ("train", "val", "eval")}


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def harmful_pool(root: str | Path | None) -> list[str]:
    rows = _csv(rows_file(root, "test")) + _csv(rows_file(root, "val"))
    return list(dict.fromkeys(r["Behavior"].strip() for r in rows
                              if r.get("FunctionalCategory") == "standard" and r["Behavior"].strip()))


def harmless_pool(root: str | Path | None, source: str) -> list[str]:
    if source == "xstest_safe":
        rows = _csv(find_file(root, "xstest"))
        texts = [r["prompt"] for r in rows if r.get("label") == "safe"]
    elif source == "dolly":
        with open(find_file(root, "dolly"), encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        texts = [r["instruction"] for r in rows if not (r.get("context") or "").strip()]
    else:
        raise ValueError(f"unknown harmless source {source!r}: use {', '.join(HARMLESS_SOURCES)}")
    return list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))


def _split(pool: list[str], sizes: dict[str, int], seed: int, tag: str) -> dict[str, list[str]]:
    need = sum(sizes.values())
    if len(pool) < need:
        raise ValueError(f"{tag}: {len(pool)} instructions, fewer than n_train + n_val + n_eval = {need}")
    drawn = list(pool)
    random.Random(f"refusal_direction:{tag}:{seed}").shuffle(drawn)
    out, start = {}, 0
    for split, n in sizes.items():
        out[split] = drawn[start:start + n]
        start += n
    return out


def instruction_sets(root: str | Path | None, harmless: str, n_train: int, n_val: int, n_eval: int,
                     seed: int) -> InstructionSets:
    """The three disjoint sets of each kind; BenchmarkDataMissing or ValueError name what is missing."""
    sizes = {"train": n_train, "val": n_val, "eval": n_eval}
    return InstructionSets(harmful=_split(harmful_pool(root), sizes, seed, "harmful"),
                           harmless=_split(harmless_pool(root, harmless), sizes, seed, f"harmless:{harmless}"))


def sets_for(p: Any, benchmarks: str | Path | None) -> InstructionSets:
    """The sets a suite's params ask for; missing or too few rows are bad input."""
    try:
        return instruction_sets(benchmarks, p.harmless, p.n_train, p.n_val, p.n_eval, p.seed)
    except (BenchmarkDataMissing, ValueError) as e:
        raise InputError(f"refusal_direction suite: {e}", "$.spec.inputs.benchmarks") from None


def settings_of(p: Any, thinking: bool) -> dict[str, Any]:
    """What must agree between a direction file's run and a reader's run for their numbers to be comparable."""
    return {"n_train": p.n_train, "n_val": p.n_val, "n_eval": p.n_eval, "seed": p.seed, "harmless": p.harmless,
            "refusal_tokens": list(p.refusal_tokens), "thinking": thinking}
