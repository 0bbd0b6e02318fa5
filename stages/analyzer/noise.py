"""The noise band of the forgetting heatmap: how large a capability change has to be before its colour means
something.

Where a study evaluates its base twice (``evaluation.base_replicates`` >= 2; the evaluator gets the second run as
``base_rerun_results``), each trained result's sample-level forgetting rows carry ``noise_flip_rate``: the share of
items right in one base run and wrong in the other, i.e. what the evaluation flips with no training at all. A
capability's measured band is the mean flip rate over its tasks (the tasks whose forgetting rows have one), averaged
over the seeds of a condition like the change itself. Capabilities without a measured flip rate (the target env,
calibration, a study with one base run) fall back to the floor (``AnalyzerParams.heatmap_noise_floor``, default
0.001: a tenth of a percentage point, below one item in a thousand, so it only absorbs float noise such as the
±1e-9 differences of identical scores); a measured band below the floor is raised to it.

A cell whose |change| is at most its band is drawn neutral; the band of each cell, and where it came from (the flip
rate, the floor above a smaller measured flip rate, or the floor where none was measured), is a table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stages.analyzer.analysis import Analysis, with_labels
from stages.analyzer.formatting import is_missing
from stages.analyzer.frames import CONDITION
from stages.analyzer.stats import aggregate

MEASURED = "base-vs-base flip rate"
FLOOR_ABOVE = "floor (above the measured flip rate)"
FLOOR = "floor (no flip rate measured)"
COLUMNS = [*CONDITION, "capability", "noise_flip_rate", "noise_flip_rate_n", "band", "source"]


def key(row: object, cols: list[str]) -> tuple:
    """A condition × capability as a hashable key in which every missing label is None and every number a float."""
    out = []
    for c in cols:
        v = getattr(row, c) if not isinstance(row, dict) else row.get(c)
        out.append(None if is_missing(v) else float(v) if isinstance(v, (int, float, np.number)) else str(v))
    return tuple(out)


def noise_bands(a: Analysis, floor: float, confidence: float) -> pd.DataFrame:
    """Per condition × capability of the heatmap: the measured flip rate (NaN where none), and the band used."""
    caps = a.by_condition["capabilities"]
    if caps.empty:
        return pd.DataFrame(columns=COLUMNS)
    of_task = a.scores.drop_duplicates("task").set_index("task")["capability"]
    f = a.forgetting[["checkpoint", "task", "noise_flip_rate"]].copy()
    f["capability"] = f["task"].map(of_task)
    f = f.dropna(subset=["capability"])
    per_ck = f.groupby(["checkpoint", "capability"], as_index=False)["noise_flip_rate"].mean()
    trained = a.checkpoints[~a.checkpoints["is_base"]][["checkpoint"]]
    measured = aggregate(with_labels(per_ck.merge(trained), a.checkpoints), CONDITION + ["capability"],
                         ["noise_flip_rate"], confidence)
    cols = CONDITION + ["capability"]
    rate = {key(r, cols): (r.noise_flip_rate, r.noise_flip_rate_n) for r in measured.itertuples()}
    rows = []
    for r in caps.itertuples():
        flip, n = rate.get(key(r, cols), (math.nan, 0))
        has = not is_missing(flip)
        rows.append({**{c: getattr(r, c) for c in cols}, "noise_flip_rate": flip, "noise_flip_rate_n": n,
                     "band": max(float(flip), floor) if has else floor,
                     "source": (MEASURED if float(flip) >= floor else FLOOR_ABOVE) if has else FLOOR})
    return pd.DataFrame(rows, columns=COLUMNS)
