"""Filling labels the conductor did not write, from the training run that produced the evaluated model.

The conductor writes every grouping key (method, domain, start, size, seed, lr, engine) into the results' ``labels``;
those always win. A results document written by hand or by an older conductor may lack some; then the evaluator's
manifest leads, through its ``model`` input link, to the training manifest, whose seed, engine and learning rate are
facts, and whose stage names the method where that is unambiguous (the three SFT arms share one stage, so their
method is never guessed). A link that cannot be followed leaves the label missing: missing is shown as missing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from stages.core import storage
from stages.core.artifacts import FROM_PATTERN
from stages.core.results import EvalResults

log = logging.getLogger("stages.analyzer")

METHOD_OF_STAGE = {"grpo-trainer": "ON-RL", "spin": "SELF", "pi-distill": "PI"}


def _training_manifest(evaluator_manifest: dict[str, Any]) -> dict[str, Any] | None:
    model = ((evaluator_manifest.get("spec") or {}).get("inputs") or {}).get("model") or {}
    m = FROM_PATTERN.match(model.get("from") or "")
    if m is None:
        return None
    try:
        doc = json.loads(storage.read_text(m.group("manifest")))
    except (ValueError, OSError) as e:
        log.warning("labels: cannot read the training manifest %s: %s", m.group("manifest"), e)
        return None
    return doc if isinstance(doc, dict) else None


def facts_of_training(train: dict[str, Any]) -> dict[str, Any]:
    """The labels a training manifest states as facts."""
    spec = train.get("spec") or {}
    runtime = spec.get("runtime") or {}
    optim = (spec.get("params") or {}).get("optim") or {}
    engine = (train.get("provenance") or {}).get("engine") or runtime.get("engine")
    facts = {"seed": runtime.get("seed"), "lr": optim.get("lr"), "engine": engine}
    facts["method"] = METHOD_OF_STAGE.get(str(train.get("stage")))
    return {k: v for k, v in facts.items() if v is not None}


def fill_labels(results: EvalResults, evaluator_manifest: dict[str, Any] | None) -> EvalResults:
    """Return ``results`` with its missing labels filled from the training manifest, where one can be found."""
    labels = results.labels
    wanted = [k for k in ("method", "seed", "lr", "engine") if getattr(labels, k) is None]
    if not wanted or evaluator_manifest is None:
        return results
    train = _training_manifest(evaluator_manifest)
    if train is None:
        return results
    facts = facts_of_training(train)
    update = {k: facts[k] for k in wanted if k in facts}
    if not update:
        return results
    return results.model_copy(update={"labels": labels.model_copy(update=update)})
