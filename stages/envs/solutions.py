"""Worked solutions for GEM's prompts, joined from the datasets GEM's prompts came from.

Why: GEM's training sets carry only ``problem``/``answer`` (math, QA) and ``problem``/``tests`` (code), so a method
that trains on the ground truth (GT-SFT's targets, SELF's chosen side, PI's privileged information) would train on
bare answers, or on nothing for code. The original sources have worked solutions: GSM8K's ``answer`` field (the
reasoning, then ``#### <final answer>``), MATH's ``solution``, CodeContests' accepted programs. This module joins
them to GEM's rows on the problem text (normalised: Unicode NFKC, case-folded, whitespace collapsed), writes them
into the ``solution`` column the adapter reads (``stages.envs.registry.SOLUTION_KEYS``), and counts the matches.

Each source is plain data (``SOURCES``); how its solutions become targets is one ``style``:
  ``gsm8k``          the reasoning without GSM8K's ``<<calculator>>`` annotations, ending "The answer is
                     $\\boxed{x}$." (the form the project's template asks for and the math grader reads); a row whose
                     final answer differs from GEM's answer is not used (counted as ``answer_mismatch``);
  ``as-is``          the solution as written (MATH's already ends in a ``\\boxed{}`` answer);
  ``code-contests``  the first accepted Python 3 program (CodeContests' language 3; Python 2 programs do not run
                     under the sandbox's Python 3).

``target_kind`` reads a dataset folder back and says what a ground-truth method would train on there.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.envs.registry import SOLUTION_KEYS, env_spec

SOLUTION_COLUMN = SOLUTION_KEYS[0]
PYTHON3 = 3  # CodeContests' language enum: 0 unknown, 1 Python 2, 2 C++, 3 Python 3, 4 Java
# A ground-truth method trains on worked solutions when at least this share of its dataset's rows has one; the other
# rows fall back to an answer-only target (math, QA) or have none (code). Below it the dataset counts as answer-only
# (or missing, for code), which `study stage`/`check` refuse for such methods unless the study opts in.
WORKED_MIN_RATE = 0.95
TARGET_KINDS = ("worked-solution", "answer-only", "missing")


@dataclass(frozen=True)
class SolutionSource:
    """Where worked solutions for some GEM envs come from (a Hugging Face dataset repo) and how to read them."""

    name: str
    env_ids: tuple[str, ...]  # GEM envs whose prompts it covers
    repo_id: str
    files: tuple[str, ...]  # patterns of the repo files holding the rows
    question: str  # column with the problem text
    solution: str  # column with the solution (the solutions struct for code-contests)
    style: str  # gsm8k | as-is | code-contests
    licence: str  # the source's licence, recorded beside the joined data


SOURCES: dict[str, SolutionSource] = {
    s.name: s
    for s in (
        SolutionSource("gsm8k", ("math:GSM8K",), "openai/gsm8k", ("main/*.parquet",), "question", "answer",
                       "gsm8k", "MIT"),
        SolutionSource("math500", ("eval:MATH500",), "HuggingFaceH4/MATH-500", ("*.jsonl",), "problem", "solution",
                       "as-is", "MIT"),
        SolutionSource("code_contests", ("code:CodeContest", "eval:CodeContest"), "deepmind/code_contests",
                       ("data/train-*.parquet", "data/test-*.parquet"), "description", "solutions", "code-contests",
                       "CC BY 4.0"),
    )
}


def source_for(env_id: str) -> SolutionSource | None:
    """The solution source of a GEM env, or None (QA: its ground truth is its answer)."""
    return next((s for s in SOURCES.values() if env_id in s.env_ids), None)


def normalise(text: Any) -> str:
    """The join key of a problem: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", str(text)).casefold().split())


def gsm8k_final(answer: str) -> str:
    return answer.rsplit("####", 1)[-1].strip().replace(",", "")


def same_answer(a: Any, b: Any) -> bool:
    """Two final answers agree as text (commas dropped) or as numbers (GEM may store 72 as 72.0)."""
    x, y = str(a).strip().replace(",", ""), str(b).strip().replace(",", "")
    if x == y:
        return True
    try:
        return float(x) == float(y)
    except ValueError:
        return False


def gsm8k_solution(answer: str) -> str:
    """GSM8K's worked answer as a target: annotations removed, the final answer boxed."""
    work, _, final = answer.rpartition("####")
    work = re.sub(r"<<[^>]*>>", "", work).strip()
    return f"{work}\nThe answer is $\\boxed{{{final.strip()}}}$."


def _code_solution(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    for lang, program in zip(value.get("language") or [], value.get("solution") or []):
        if lang == PYTHON3 and program and program.strip():
            return program
    return None


def solution_text(source: SolutionSource, value: Any) -> str | None:
    """The target text of one source row's solution value, or None when it has no usable one."""
    if source.style == "code-contests":
        return _code_solution(value)
    if not isinstance(value, str) or not value.strip():
        return None
    return gsm8k_solution(value) if source.style == "gsm8k" else value.strip()


def _rows(path: Path, columns: list[str]) -> Iterator[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(columns=columns, batch_size=256):
            yield from batch.to_pylist()
    elif path.suffix in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    yield {c: row.get(c) for c in columns}
    else:
        raise ValueError(f"{path}: solution sources are parquet or JSON lines")


def solution_index(source: SolutionSource, files: list[Path]) -> dict[str, tuple[str, Any]]:
    """normalised problem -> (target text, raw solution value); the first usable row of a problem wins."""
    index: dict[str, tuple[str, Any]] = {}
    for path in sorted(files):
        for row in _rows(path, [source.question, source.solution]):
            key = normalise(row.get(source.question) or "")
            if key and key not in index:
                text = solution_text(source, row.get(source.solution))
                if text is not None:
                    index[key] = (text, row.get(source.solution))
    return index


@dataclass
class JoinStats:
    rows: int = 0
    matched: int = 0  # rows that got a worked solution from the source
    kept: int = 0  # rows that already had one in GEM's data
    answer_mismatch: int = 0  # matched problems whose source answer differs from GEM's (not used)

    @property
    def rate(self) -> float:
        return (self.matched + self.kept) / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "matched": self.matched, "kept": self.kept,
                "answer_mismatch": self.answer_mismatch, "rate": round(self.rate, 6)}


def join_solutions(table: Any, env_id: str, source: SolutionSource, index: dict[str, tuple[str, Any]]):
    """``table`` (pyarrow) with a ``solution`` column filled from ``index``; returns (table, JoinStats)."""
    import pyarrow as pa

    spec = env_spec(env_id)
    questions = table.column(spec.question_key).to_pylist()
    existing = table.column(SOLUTION_COLUMN).to_pylist() if SOLUTION_COLUMN in table.column_names else None
    answers = table.column(spec.answer_key).to_pylist() if source.style == "gsm8k" else None
    stats = JoinStats(rows=len(questions))
    out: list[str | None] = []
    for i, q in enumerate(questions):
        if existing is not None and existing[i]:
            stats.kept += 1
            out.append(existing[i])
            continue
        hit = index.get(normalise(q))
        if hit is not None and answers is not None and not same_answer(gsm8k_final(str(hit[1])), answers[i]):
            stats.answer_mismatch += 1
            hit = None
        stats.matched += hit is not None
        out.append(None if hit is None else hit[0])
    column = pa.array(out, type=pa.string())
    if existing is not None:
        table = table.set_column(table.column_names.index(SOLUTION_COLUMN), SOLUTION_COLUMN, column)
    else:
        table = table.append_column(SOLUTION_COLUMN, column)
    return table, stats


@dataclass(frozen=True)
class TargetKind:
    """What a ground-truth method trains on with one dataset split."""

    env_id: str
    path: str
    kind: str  # one of TARGET_KINDS
    rows: int
    with_solution: int

    @property
    def rate(self) -> float:
        return self.with_solution / self.rows if self.rows else 0.0

    def describe(self) -> str:
        return (f"{self.kind} ({self.with_solution} of {self.rows} rows of {self.env_id} at {self.path} have a "
                f"worked solution)")


def kind_of(domain: str, rate: float) -> str:
    if rate >= WORKED_MIN_RATE:
        return "worked-solution"
    return "missing" if domain == "code" else "answer-only"


def target_kind(dataset_dir: str | Path, env_id: str, split: str | None = None) -> TargetKind | None:
    """The target kind of an env's dataset folder (its training split), or None when the split is not there."""
    spec = env_spec(env_id)
    path = Path(dataset_dir) / f"{split or spec.split}.parquet"
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    key = next((k for k in SOLUTION_KEYS if k in schema.names), None)
    rows = pq.ParquetFile(path).metadata.num_rows
    with_solution = 0
    if key is not None:
        values = pq.read_table(path, columns=[key]).column(0).to_pylist()
        with_solution = sum(1 for v in values if (v[0] if isinstance(v, list) and v else v))
    return TargetKind(env_id, str(path), kind_of(spec.domain, with_solution / rows if rows else 0.0), rows,
                      with_solution)
