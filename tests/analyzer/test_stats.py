"""Seed statistics without scipy: the t quantile against published table values (and scipy where installed), and
intervals that are missing, never zero, when one seed cannot give one."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from stages.analyzer.stats import aggregate, mean_ci, t_cdf, t_quantile

# (p, df) -> Student t quantile, from standard tables
TABLE = {(0.975, 1): 12.7062047, (0.975, 2): 4.3026527, (0.975, 4): 2.7764451, (0.975, 10): 2.2281389,
         (0.995, 5): 4.0321430, (0.95, 30): 1.6972609, (0.9, 1000): 1.2823987}


@pytest.mark.parametrize("key", sorted(TABLE))
def test_t_quantile_matches_tables(key):
    assert t_quantile(*key) == pytest.approx(TABLE[key], rel=1e-6)
    assert t_quantile(1 - key[0], key[1]) == pytest.approx(-TABLE[key], rel=1e-6)
    assert t_cdf(TABLE[key], key[1]) == pytest.approx(key[0], abs=1e-7)


def test_t_quantile_matches_scipy_where_installed():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 7, 25, 200):
        for p in (0.6, 0.9, 0.975, 0.999):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9)


def test_t_quantile_rejects_nonsense():
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError):
        t_quantile(0.9, 0)


def test_mean_ci():
    one = mean_ci([0.4], 0.95)
    assert one["mean"] == 0.4 and one["n"] == 1 and math.isnan(one["ci_low"]) and math.isnan(one["sd"])
    none = mean_ci([float("nan"), None], 0.95)
    assert none["n"] == 0 and math.isnan(none["mean"])
    three = mean_ci([1.0, 2.0, float("nan"), 3.0], 0.95)  # the missing value is left out, not counted as 0
    assert three["n"] == 3 and three["mean"] == 2.0 and three["sd"] == pytest.approx(1.0)
    assert three["ci_high"] - 2.0 == pytest.approx(TABLE[(0.975, 2)] / math.sqrt(3), rel=1e-6)
    wider = mean_ci([1.0, 2.0, 3.0], 0.99)
    assert wider["ci_high"] > three["ci_high"]


def test_aggregate_keeps_missing_keys_as_groups():
    df = pd.DataFrame({"method": ["A", "A", None], "seed": [1, 2, 1], "x": [1.0, 3.0, 5.0]})
    agg = aggregate(df, ["method"], ["x"], 0.95)
    assert len(agg) == 2
    a = agg[agg["method"] == "A"].iloc[0]
    assert a["x"] == 2.0 and a["x_n"] == 2 and a["n_runs"] == 2
    assert agg["method"].isna().sum() == 1  # a run without a method label is its own group, not dropped
