"""``study stage``: fetch everything a study reads, item by item, into the places its plan reads them.

The order of work: plan the study (paths unchecked: nothing is there yet), list its items, skip those the staging
record holds complete and unchanged, fetch the rest (a failure is reported and the next item goes on; the record is
written after every item, so an interrupted staging resumes), then plan again with the paths checked, which also
checks each ground-truth method's target kind on the staged data, and look for anything still missing.

Exit codes: 0 everything staged and the plan is satisfied; 1 an item could not be fetched; 2 bad input, or the
staged data refused (a method that needs worked solutions on a dataset without them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stages.study.errors import StudyError
from stages.study.paths import absolute, join, local
from stages.study.staging.fetch import Stager
from stages.study.staging.items import Item, needed_items
from stages.study.staging.missing import item_problem, missing_items
from stages.study.staging.record import read_record, write_record

Echo = Callable[[str], None]
CACHE = ".staging-cache"


@dataclass
class StageOptions:
    root: str | None = None
    cluster: str = "local"
    endpoint: str | None = None
    index_url: str | None = None
    hf_home: str | None = None
    cache: str | None = None
    list_only: bool = False


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _describe(entry: dict) -> str:
    size = entry.get("bytes", entry.get("size"))
    rev = str(entry.get("revision") or "")
    parts = [f"revision {rev[:12] if len(rev) == 40 else rev}" if rev else "",
             f"licence {entry.get('licence') or 'not declared'}", _size(size) if size is not None else ""]
    for env, k in (entry.get("target_kinds") or {}).items():
        parts.append(f"{env}: {k['kind']} ({k['with_solution']}/{k['rows']} rows with a worked solution)")
    return "; ".join(p for p in parts if p)


def _complete(item: Item, entry: dict | None) -> bool:
    return bool(entry and entry.get("state") == "complete") and item_problem(item, {item.key: entry}) is None


def stage_items(items: list[Item], root: str, stager: Stager, echo: Echo) -> tuple[int, int, list[str]]:
    """Stage every item not already complete; returns (staged, skipped, failures)."""
    record = read_record(root)
    staged, skipped, failed = 0, 0, []
    for i, item in enumerate(items, 1):
        head = f"[{i}/{len(items)}] {item.label}"
        entry = record["items"].get(item.key)
        if _complete(item, entry):
            echo(f"{head}: staged {entry['staged_at']}, skipped")
            skipped += 1
            continue
        echo(f"{head} <- {item.source or 'its source'} -> {item.path}")
        t0 = time.monotonic()
        try:
            entry = stager.stage(item)
        except Exception as e:  # one item's failure must not stop the others; the record keeps what succeeded
            echo(f"{head}: FAILED: {e}")
            record["items"][item.key] = {"kind": item.kind, "name": item.name, "path": item.path,
                                         "state": "failed", "error": str(e)}
            failed.append(f"{item.label}: {e}")
        else:
            echo(f"{head}: done in {time.monotonic() - t0:.0f} s ({_describe(entry)})")
            record["items"][item.key] = entry
            staged += 1
        write_record(root, record)
    return staged, skipped, failed


def run_stage(study_ref: str, opts: StageOptions, echo: Echo) -> int:
    from stages.study.definition import load_study
    from stages.study.planner import plan_study
    from stages.study.profiles import load_profile

    profile = load_profile(opts.cluster)
    study = load_study(study_ref)
    root = absolute(opts.root or profile.runs_root)
    plan = plan_study(study, root, opts.cluster, check_paths=False)
    items = needed_items(plan, study)
    hf_home = opts.hf_home or profile.hf_home
    for item in items:
        if item.kind == "lm-eval" and hf_home:
            item.path = hf_home
    echo(f"study {study.study}: {len(items)} items to stage for cluster {opts.cluster} (record: "
         f"{join(root, 'staging.json')})")
    if opts.list_only:
        from stages.envs.solutions import source_for

        for item in items:
            echo(f"  {item.label:<48} {item.source or '-':<40} -> {item.path}")
            for src in dict.fromkeys(s for s in map(source_for, item.env_ids) if s):
                echo(f"    + worked solutions from {src.repo_id} ({src.licence}), joined on the problem text")
        return 0
    cache = local(opts.cache or join(root, CACHE))
    cache.mkdir(parents=True, exist_ok=True)
    stager = Stager(Path(cache), opts.endpoint, opts.index_url, hf_home, echo)
    staged, skipped, failed = stage_items(items, root, stager, echo)
    echo(f"study {study.study}: {staged} staged, {skipped} already staged, {len(failed)} failed")
    if failed:
        for f in failed:
            echo(f"  failed: {f}")
        echo("run `study stage` again to resume")
        return 1
    try:
        plan = plan_study(study, root, opts.cluster, check_paths=True)  # also checks each GT method's target kind
    except StudyError as e:
        echo(f"study: error: {e}")
        return 2
    still = missing_items(plan)
    for name, why in still:
        echo(f"  missing: {name}: {why}")
    return 1 if still else 0
