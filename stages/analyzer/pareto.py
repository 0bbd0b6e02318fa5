"""Pareto fronts of seed-averaged conditions, for the two trade-offs the plan asks about.

Both axes are maximised. A point is on the front when no other point of its panel is at least as good on both axes
and strictly better on one; ties (identical points) are both kept. Points with a missing coordinate are not
candidates (they are plotted nowhere), so a partial study's front is the front of what exists.

- target trade-off (E1): x = target gain, y = retained change, one panel per start × model size × domain;
- safety trade-off (plan §2.3): x = target score, y = safety score, SAFE start only, one panel per size × domain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages.analyzer.frames import CONDITION

PANEL_TARGET = ["start", "model_size", "domain"]
PANEL_SAFETY = ["start", "model_size", "domain"]
SAFE = "SAFE"


def front_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """True where (x, y) is not dominated; NaN points are never on the front."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    on = np.zeros(len(x), dtype=bool)
    for i in np.flatnonzero(ok):
        dominated = ok & (x >= x[i]) & (y >= y[i]) & ((x > x[i]) | (y > y[i]))
        on[i] = not dominated.any()
    return on


def _points(agg: pd.DataFrame, panel: list[str], xcol: str, ycol: str) -> pd.DataFrame:
    cols = list(dict.fromkeys(panel + CONDITION))
    extra = [c for c in (f"{xcol}_ci_low", f"{xcol}_ci_high", f"{ycol}_ci_low", f"{ycol}_ci_high", "n_runs")
             if c in agg.columns]
    pts = agg[cols + [xcol, ycol] + extra].rename(columns={xcol: "x", ycol: "y"}).copy()
    pts = pts.rename(columns={f"{xcol}_ci_low": "x_ci_low", f"{xcol}_ci_high": "x_ci_high",
                              f"{ycol}_ci_low": "y_ci_low", f"{ycol}_ci_high": "y_ci_high"})
    pts["on_front"] = False
    for _, idx in pts.groupby(panel, dropna=False).groups.items():
        pts.loc[idx, "on_front"] = front_mask(pts.loc[idx, "x"].to_numpy(), pts.loc[idx, "y"].to_numpy())
    pts.insert(len(cols), "x_name", xcol)
    pts.insert(len(cols) + 1, "y_name", ycol)
    return pts.reset_index(drop=True)


def target_points(summary_by_condition: pd.DataFrame) -> pd.DataFrame:
    return _points(summary_by_condition, PANEL_TARGET, "target_gain", "retained_change")


def safety_points(summary_by_condition: pd.DataFrame) -> pd.DataFrame:
    safe = summary_by_condition[summary_by_condition["start"].astype("string").str.upper().eq(SAFE).fillna(False)]
    return _points(safe, PANEL_SAFETY, "target_score", "safety_score")
