"""Forgetting as a function of KL(base || post) on target prompts (RL's Razor, effect E3): a least-squares
quadratic over every trained checkpoint that has both numbers, with its R².

The KL is the exact per-token one where the results have it (``stages.analyzer.kl_values``); checkpoints with only
the Monte Carlo figure (older results) are kept, marked by ``kl_estimator``, and the fit row counts them in its note.
Fewer than three distinct KL values cannot pin a quadratic: the fit row then says so and its numbers stay missing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stages.analyzer.kl_values import MONTE_CARLO

COLUMNS = ["group", "n", "a", "b", "c", "r2", "note"]


def quadratic_fit(x: np.ndarray, y: np.ndarray) -> dict[str, float | int | str]:
    """y ≈ a·x² + b·x + c; R² = 1 − SS_res / SS_tot (missing when y is constant)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    row: dict[str, float | int | str] = {"n": int(x.size), "a": math.nan, "b": math.nan, "c": math.nan,
                                         "r2": math.nan, "note": ""}
    if np.unique(x).size < 3:
        row["note"] = "fewer than 3 distinct KL values"
        return row
    a, b, c = np.polyfit(x, y, 2)
    pred = a * x**2 + b * x + c
    ss_tot = float(((y - y.mean()) ** 2).sum())
    row.update(a=float(a), b=float(b), c=float(c))
    row["r2"] = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else math.nan
    return row


def kl_points(summary: pd.DataFrame, ckpts: pd.DataFrame) -> pd.DataFrame:
    """One point per trained checkpoint with both KL on target prompts and forgetting."""
    trained = ckpts[~ckpts["is_base"]]
    pts = trained[["checkpoint", "start", "model_size", "method", "domain", "lr", "seed", "kl_estimator",
                   "kl_target_stderr", "kl_target_mc"]].merge(
        summary[["checkpoint", "kl_target", "forgetting"]], on="checkpoint"
    )
    return pts[np.isfinite(pts["kl_target"].astype(float)) & np.isfinite(pts["forgetting"].astype(float))]


def kl_fit(points: pd.DataFrame) -> pd.DataFrame:
    row = {"group": "all checkpoints", **quadratic_fit(points["kl_target"].to_numpy(float),
                                                        points["forgetting"].to_numpy(float))}
    mc = int(points["kl_estimator"].eq(MONTE_CARLO).sum()) if "kl_estimator" in points else 0
    if mc:
        row["note"] = "; ".join(n for n in (str(row["note"]), f"{mc} of {len(points)} points use the Monte Carlo "
                                            "KL (no exact KL in their results)") if n)
    return pd.DataFrame([row], columns=COLUMNS)
