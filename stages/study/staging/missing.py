"""What a planned study reads that is not where it should be, by name: ``study check``'s staging rows.

Each item the plan reads (``items.needed_items``) is looked for the way its stage will look: a model folder with its
``config.json``, every split file of a dataset folder, a benchmark file by name under the benchmarks folder (as the
evaluator's loaders search). Where ``study stage`` recorded the item (``record.py``), every file it staged must
still be there with its size. lm-eval's downloaded datasets live in lm-eval's cache and are only known through the
record: they are checked once something was staged under this root.
"""

from __future__ import annotations

from pathlib import Path

from stages.study.dag import Plan
from stages.study.errors import StudyError
from stages.study.paths import local
from stages.study.staging.benchmarks import BENCHMARKS
from stages.study.staging.items import Item, needed_items
from stages.study.staging.record import entry_problem, read_record


def _local(path: str) -> Path | None:
    try:
        return local(path)
    except StudyError:
        return None


def _on_disk(item: Item) -> str | None:
    """Why an item is not where its stage will read it, judged from the files alone (None: it is there)."""
    if item.kind == "benchmark":
        src = BENCHMARKS[item.name]
        root = _local(item.within or "")
        found = root is not None and any(
            not src.in_folder or p.parent.name == src.dest.split("/")[0] for p in root.rglob(src.file_name))
        return None if found else f"{item.within} holds no {src.dest}"
    where = _local(item.path)
    if where is None:
        return f"{item.path} cannot be resolved here (is its variable set?)"
    if item.kind == "model":
        if not (where / "config.json").is_file():
            return f"{where} is missing" if not where.exists() else f"{where} has no config.json"
        return None
    if item.kind == "dataset":
        from stages.envs.registry import env_spec

        splits = sorted({env_spec(e).split for e in item.env_ids})
        lacking = [s for s in splits if not (where / f"{s}.parquet").is_file()]
        if lacking:
            return f"{where} is missing" if not where.exists() else f"{where} has no {', '.join(lacking)} split"
    return None


def _lm_eval(item: Item, entries: dict) -> str | None:
    if not entries:
        return None  # nothing staged under this root: lm-eval's cache cannot be judged
    for e in entries.values():
        if (e.get("kind") == "lm-eval" and e.get("state") == "complete" and set(item.tasks) <= set(e.get("tasks", []))
                and set(item.tiers) <= set(e.get("tiers", [])) and Path(e["local"]).is_dir()):
            return None
    return "lm-eval's datasets for them were not staged under this root"


def item_problem(item: Item, entries: dict) -> str | None:
    if item.kind == "lm-eval":
        return _lm_eval(item, entries)
    entry = entries.get(item.key)
    if entry and entry.get("state") == "complete":
        changed = entry_problem(entry)
        if changed:
            return changed
    return _on_disk(item)


def missing_items(plan: Plan) -> list[tuple[str, str]]:
    """(item, why) for every input of the plan that is missing or changed since staging; empty when all is there."""
    entries = read_record(plan.root)["items"]
    out = []
    for item in needed_items(plan):
        why = item_problem(item, entries)
        if why:
            users = item.used_by
            shown = ", ".join(users[:2]) + (f" and {len(users) - 2} more" if len(users) > 2 else "")
            out.append((item.label, f"{why} (read by {shown}); run `study stage`"))
    return out
