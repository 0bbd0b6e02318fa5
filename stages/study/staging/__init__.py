"""Staging a study: everything it reads (models, GEM datasets with worked solutions, benchmark rows, lm-eval's
datasets) fetched on a login node into the places its plan reads them, with a record of what came from where.

``study stage`` runs ``command.run_stage``; ``study check`` calls ``missing_items`` to name whatever is absent or
changed since staging; the planner calls ``targets`` to refuse ground-truth methods without worked solutions.
Modules: ``items`` (what a plan reads), ``fetch`` (getting one item), ``record`` (staging.json), ``missing``,
``benchmarks`` (benchmark sources as data), ``targets`` (which methods need worked solutions).
"""

from __future__ import annotations

from typing import Any


def missing_items(plan: Any) -> list[tuple[str, str]]:
    """(item, why) for everything the plan reads that is missing or changed since staging (see ``missing``)."""
    from stages.study.staging.missing import missing_items as find

    return find(plan)


__all__ = ["missing_items"]
