"""Pareto membership (both axes maximised): dominated points are off, ties are kept, missing points never count."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stages.analyzer.pareto import front_mask, safety_points, target_points


def test_front_mask():
    x = np.array([0.20, 0.17, 0.18, 0.05, 0.17, math.nan, 0.30])
    y = np.array([-0.08, -0.01, -0.10, -0.01, -0.01, 0.50, math.nan])
    # 0.18/-0.10 is dominated by 0.20/-0.08; 0.05/-0.01 by 0.17/-0.01; the two equal 0.17/-0.01 both stay
    assert front_mask(x, y).tolist() == [True, True, False, False, True, False, False]
    assert front_mask(np.array([]), np.array([])).tolist() == []


def _agg(rows):
    cols = ["start", "model_size", "method", "domain", "lr", "engine", "target_gain", "retained_change",
            "target_score", "safety_score", "n_runs"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows])


def test_fronts_are_per_panel_and_safety_is_safe_only():
    agg = _agg([
        ("BASE", "4B", "A", "math", 1e-5, "native", 0.1, -0.1, 0.4, math.nan, 1),
        ("BASE", "4B", "B", "math", 1e-5, "native", 0.2, -0.05, 0.5, math.nan, 1),
        ("BASE", "4B", "A", "code", 1e-5, "native", 0.01, -0.3, 0.1, math.nan, 1),  # alone in its panel: on
        ("SAFE", "4B", "A", "math", 1e-5, "native", 0.1, -0.1, 0.4, 0.9, 1),
        ("SAFE", "4B", "B", "math", 1e-5, "native", 0.2, -0.2, 0.5, 0.8, 1),
        ("SAFE", "4B", "C", "math", 1e-5, "native", 0.2, -0.2, 0.3, 0.7, 1),
    ])
    t = target_points(agg)
    on = {(r.start, r.domain, r.method) for r in t.itertuples() if r.on_front}
    assert on == {("BASE", "math", "B"), ("BASE", "code", "A"), ("SAFE", "math", "A"), ("SAFE", "math", "B"),
                  ("SAFE", "math", "C")}
    s = safety_points(agg)
    assert set(s["start"]) == {"SAFE"}
    assert {r.method for r in s.itertuples() if r.on_front} == {"A", "B"}
