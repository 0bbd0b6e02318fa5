"""Seed aggregation: the mean and a Student-t confidence interval, without scipy (the analyzer image has none).

With n seeds the interval is mean ± t_{(1+c)/2, n-1} · sd / √n (sd with n − 1 degrees of freedom). One seed
gives a mean and no interval: the interval is missing, never zero. The t quantile inverts the t distribution function,
computed from the regularised incomplete beta function by its continued fraction (Lentz's method), by bisection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


def _betacf(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with df degrees of freedom (0 < p < 1)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0 (got p={p}, df={df})")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def mean_ci(values: Sequence[float], confidence: float) -> dict[str, float]:
    """Mean, sd, n and the t interval of the finite values (missing values are left out, not counted as zero)."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return {"mean": math.nan, "sd": math.nan, "n": 0, "ci_low": math.nan, "ci_high": math.nan}
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "sd": math.nan, "n": 1, "ci_low": math.nan, "ci_high": math.nan}
    sd = float(x.std(ddof=1))
    half = t_quantile((1.0 + confidence) / 2.0, n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "sd": sd, "n": n, "ci_low": mean - half, "ci_high": mean + half}


def aggregate(df: pd.DataFrame, keys: list[str], value_cols: list[str], confidence: float) -> pd.DataFrame:
    """One row per group of ``keys``: for each value column, its mean, sd, n (seeds) and interval."""
    rows = []
    for key, group in df.groupby(keys, dropna=False, sort=True):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row["n_runs"] = len(group)
        for col in value_cols:
            stats = mean_ci(group[col].tolist(), confidence)
            for name, value in stats.items():
                row[col if name == "mean" else f"{col}_{name}"] = value
        rows.append(row)
    columns = keys + ["n_runs"] + [
        c for col in value_cols for c in (col, f"{col}_sd", f"{col}_n", f"{col}_ci_low", f"{col}_ci_high")
    ]
    return pd.DataFrame(rows, columns=columns)
