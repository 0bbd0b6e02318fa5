"""Comparing this run with the base model's results: loading them, checking they are comparable, and computing
sample-level forgetting per task and overall.

The base is evaluated once and every post-trained checkpoint is compared with that one ``results.json``. Two result
sets are comparable only if they asked for the same tasks the same way (``protocol``: tasks, item selection, chat
template, few-shot, thinking) and scored the same documents (same item ids and document hashes). The first is
checked before anything runs (``check_protocol``), the second on the records themselves. A second evaluation of the
base with another seed (``base_rerun_results``) gives the noise flip rate: F between two runs of the same model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from stages.core.errors import InputError
from stages.core.results import EvalResults, Forgetting
from stages.evaluator.items import ItemRecord, correctness, read_records, samples_file
from stages.evaluator.metrics.transitions import (
    ItemSubsetMismatch,
    Transitions,
    chance_adjusted,
    mcnemar,
    pooled,
    transitions,
)

OVERALL = "overall"


@dataclass
class LoadedResults:
    results: EvalResults
    root: Path  # folder of results.json
    label: str  # the input's name, for messages

    def records(self, task: str) -> list[ItemRecord]:
        rel = self.results.samples_files.get(task) or samples_file(task)
        path = self.root / rel
        if not path.is_file():
            raise InputError(f"{self.label} has no per-item records for task {task!r} ({path} is missing)",
                             f"$.spec.inputs.{self.label}")
        return read_records(path)


def load_results(path: Path, label: str) -> LoadedResults:
    """Read a ``results.json`` (or a folder holding one) written by the evaluator."""
    file = path / "results.json" if path.is_dir() else path
    where = f"$.spec.inputs.{label}"
    try:
        results = EvalResults.model_validate_json(file.read_text())
    except FileNotFoundError:
        raise InputError(f"{file} does not exist", where) from None
    except (ValidationError, ValueError) as e:
        first = e.errors()[0] if isinstance(e, ValidationError) else {"msg": str(e), "loc": ()}
        raise InputError(f"{file} is not evaluator results: {first['msg']} at {list(first['loc'])}", where) from None
    return LoadedResults(results, file.parent, label)


def check_protocol(base: EvalResults, protocol: dict, label: str) -> None:
    """Refuse a base whose tasks, item selection or prompt format differ from this run's."""
    where = f"$.spec.inputs.{label}"
    asked = [t for t in str(protocol.get("tasks") or "").split(",") if t]
    had = [t for t in str(base.protocol.get("tasks") or "").split(",") if t]
    missing = [t for t in asked if t not in had]
    if asked and missing:
        raise InputError(
            f"{label} ({base.run_id}) was not evaluated on {', '.join(missing)} (it has: {', '.join(had) or 'none'}); "
            "evaluate the base on the same tasks", where
        )
    for key in sorted(set(protocol) - {"tasks"}):
        if key in base.protocol and base.protocol[key] != protocol[key]:
            raise InputError(
                f"{label} ({base.run_id}) used a different item subset or prompt format: {key} = "
                f"{base.protocol[key]!r} there, {protocol[key]!r} here; compare only runs made the same way", where
            )


def _check_same_documents(task: str, pre: Sequence[ItemRecord], post: Sequence[ItemRecord], label: str) -> None:
    pre_hash = {r.item_id: r.doc_hash for r in pre}
    post_hash = {r.item_id: r.doc_hash for r in post}
    if set(pre_hash) != set(post_hash):
        only_pre = sorted(set(pre_hash) - set(post_hash))
        only_post = sorted(set(post_hash) - set(pre_hash))
        raise ItemSubsetMismatch(
            f"{label} scored a different item subset of {task!r}: {len(only_pre)} items only there "
            f"(e.g. {only_pre[:3]}), {len(only_post)} only here (e.g. {only_post[:3]}); evaluate both on the same "
            "pinned items"
        )
    changed = [i for i in pre_hash if pre_hash[i] and post_hash[i] and pre_hash[i] != post_hash[i]]
    if changed:
        raise ItemSubsetMismatch(
            f"{label}: items {changed[:3]} of {task!r} have different content (document hash) than here: "
            "the data changed between the two evaluations"
        )


def _row(task: str, t: Transitions, k: list[int] | None, noise: float | None) -> Forgetting:
    chi2, p = mcnemar(t.forgotten, t.gained)
    row = Forgetting(
        task=task, n=t.n, n_missing=t.n_missing, forgetting=t.forgetting, backward_transfer=t.backward_transfer,
        retention=t.retention, non_acquisition=t.non_acquisition, forgetting_conditional=t.forgetting_conditional,
        acc_pre=t.acc_pre, acc_post=t.acc_post, mcnemar_chi2=chi2, mcnemar_p=p, mcnemar_b=t.forgotten,
        mcnemar_c=t.gained, noise_flip_rate=noise,
        forgetting_minus_noise=None if noise is None else t.forgetting - noise,
    )
    if k and t.n and all(x >= 2 for x in k):
        c = chance_adjusted(t, k)
        row.forgetting_true, row.backward_transfer_true = c.forgetting_true, c.backward_transfer_true
        row.forgetting_chance, row.backward_transfer_chance = c.forgetting_chance, c.backward_transfer_chance
        row.forgetting_max, row.backward_transfer_max = c.forgetting_max, c.backward_transfer_max
        row.num_choices = sum(k) / len(k)
    return row


def _keyed(leaf: str, records: Sequence[ItemRecord]) -> dict[str, bool | None]:
    return {f"{leaf}/{k}": v for k, v in correctness(records).items()}


def forgetting_rows(
    current: dict[str, list[ItemRecord]],
    groups: dict[str, list[str]],
    base: LoadedResults,
    rerun: LoadedResults | None = None,
    overall: bool = True,
) -> list[Forgetting]:
    """One row per requested task (a group pools its leaf tasks' items), plus the pooled ``overall`` row.

    ``current`` holds this run's records per leaf task; ``groups`` maps each requested name to its leaves.
    """
    rows, per_task, noise_parts = [], [], []
    for name in sorted(groups):
        pre_all: dict[str, bool | None] = {}
        post_all: dict[str, bool | None] = {}
        again_all: dict[str, bool | None] = {}
        k: list[int] = []
        n_items = 0
        for leaf in groups[name]:
            post = current[leaf]
            pre = base.records(leaf)
            _check_same_documents(leaf, pre, post, base.label)
            pre_all.update(_keyed(leaf, pre))
            post_all.update(_keyed(leaf, post))
            k += [len(r.choice_logliks) for r in post if r.kind == "mc" and r.choice_logliks]
            n_items += len(post)
            if rerun is not None:
                again = rerun.records(leaf)
                _check_same_documents(leaf, pre, again, rerun.label)
                again_all.update(_keyed(leaf, again))
        t = transitions(pre_all, post_all, task=name)
        per_task.append(t)
        noise = None
        if rerun is not None:
            n_t = transitions(pre_all, again_all, task=name)
            noise_parts.append(n_t)
            noise = n_t.forgetting
        rows.append(_row(name, t, k if k and len(k) == n_items else None, noise))
    if rows and overall:
        noise_all = pooled(noise_parts).forgetting if noise_parts else None
        rows.append(_row(OVERALL, pooled(per_task), None, noise_all))
    return rows
