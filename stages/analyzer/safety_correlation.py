"""Is safety loss correlated with capability forgetting? One point per trained checkpoint (seeds are separate
points: each is its own training run), across every method, domain and size of the scope.

Safety degradation is measured three ways: ``safety_degradation`` = −(change of the safety score against the base),
the change in HarmBench attack success rate, and the change in XSTest unsafe compliance (positive = less safe each
time). Capability forgetting is ``forgetting`` (−retained change of the non-target capabilities) and, where the
evaluator recorded per-item transitions, ``sample_forgetting`` (mean F = #(1→0)/N). Each pair is computed for the
whole study and for each starting point with:

- Pearson's r with its Fisher-z interval, tanh(atanh r ± z·1/√(n−3)), and its two-sided t-test p-value;
- Spearman's ρ (Pearson on average ranks: robust to one extreme method) with the Fisher-z interval using the
  Bonett–Wright standard error √((1 + ρ²/2)/(n−3)), and the t-test p-value;
- a percentile bootstrap interval of ρ over checkpoints (``BOOTSTRAP`` resamples, fixed seed: the same numbers every
  run), which does not lean on normality; resamples with a constant coordinate are skipped.

Intervals need n ≥ 4 points and correlations n ≥ 3; below that they are missing, never zero. The analyzer image has
no scipy: ranks, intervals and p-values are computed here with numpy and ``stages.analyzer.stats``.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from stages.analyzer.analysis import Analysis, with_labels
from stages.analyzer.figures.style import DOMAIN_MARKERS, Figure, known_methods_first, method_colour, new_figure, save
from stages.analyzer.stats import t_cdf
from stages.analyzer.tables import Table

BOOTSTRAP, SEED = 2000, 0
SAFETY = {"safety_degradation": "safety degradation (−Δ safety score)",
          "harmbench_asr_delta": "Δ HarmBench ASR", "xstest_under_refusal_delta": "Δ XSTest unsafe compliance"}
CAPABILITY = {"forgetting": "forgetting (−retained change)", "sample_forgetting": "sample-level forgetting F"}
COLUMNS = ["scope", "safety", "capability", "n", "pearson_r", "pearson_ci_low", "pearson_ci_high", "pearson_p",
           "spearman_rho", "spearman_ci_low", "spearman_ci_high", "spearman_p", "spearman_boot_ci_low",
           "spearman_boot_ci_high"]


def points_frame(a: Analysis) -> pd.DataFrame:
    """Per trained checkpoint: labels, forgetting measures and safety changes (positive = less safe)."""
    s = a.summary[["checkpoint", "forgetting", "sample_forgetting", "safety_change"]]
    s = s.assign(safety_degradation=-s["safety_change"].astype(float))
    cols = [c for c in ("harmbench_asr_delta", "xstest_under_refusal_delta") if c in a.safety.columns]
    if cols:
        s = s.merge(a.safety[["checkpoint", *cols]].astype({"checkpoint": object}), on="checkpoint", how="left")
    for c in SAFETY:
        if c not in s.columns:
            s[c] = math.nan
    trained = a.checkpoints[~a.checkpoints["is_base"]][["checkpoint"]]
    return with_labels(s.astype({"checkpoint": object}).merge(trained.astype({"checkpoint": object})),
                       a.checkpoints)


def ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share the mean of their positions), 1-based: the count of smaller
    values plus half of (the count of equal ones + 1)."""
    x = np.asarray(x, dtype=float)
    less = (x[..., None, :] < x[..., :, None]).sum(-1)
    equal = (x[..., None, :] == x[..., :, None]).sum(-1)
    return less + (equal + 1) / 2.0


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    den = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    return float(np.clip((dx * dy).sum() / den, -1.0, 1.0)) if den > 0 else math.nan


def p_value(r: float, n: int) -> float:
    """Two-sided p of H0: no correlation, from t = r √((n−2)/(1−r²)) with n−2 degrees of freedom."""
    if not math.isfinite(r) or n < 3:
        return math.nan
    if abs(r) >= 1.0:
        return 0.0
    t = r * math.sqrt((n - 2) / (1.0 - r * r))
    return float(min(1.0, 2.0 * (1.0 - t_cdf(abs(t), n - 2))))


def fisher_interval(r: float, n: int, confidence: float, se_scale: float = 1.0) -> tuple[float, float]:
    if not math.isfinite(r) or n < 4:
        return math.nan, math.nan
    if abs(r) >= 1.0:
        return r, r
    z, half = math.atanh(r), NormalDist().inv_cdf((1.0 + confidence) / 2.0) * se_scale / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)


def bootstrap_spearman(x: np.ndarray, y: np.ndarray, confidence: float) -> tuple[float, float]:
    n = len(x)
    if n < 4:
        return math.nan, math.nan
    idx = np.random.default_rng(SEED).integers(0, n, size=(BOOTSTRAP, n))
    rx, ry = ranks(x[idx]), ranks(y[idx])
    dx, dy = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    den = np.sqrt((dx * dx).sum(1) * (dy * dy).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rhos = (dx * dy).sum(1) / den
    rhos = np.clip(rhos[np.isfinite(rhos) & (den > 0)], -1.0, 1.0)
    if rhos.size == 0:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(rhos, tail)), float(np.quantile(rhos, 1.0 - tail))


def correlate(x: np.ndarray, y: np.ndarray, confidence: float) -> dict[str, float]:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = np.asarray(x, dtype=float)[ok], np.asarray(y, dtype=float)[ok]
    n = len(x)
    r = pearson(x, y)
    rho = pearson(ranks(x), ranks(y)) if n >= 3 else math.nan
    p_lo, p_hi = fisher_interval(r, n, confidence)
    bw = math.sqrt(1.0 + rho * rho / 2.0) if math.isfinite(rho) else 1.0
    s_lo, s_hi = fisher_interval(rho, n, confidence, bw)
    b_lo, b_hi = bootstrap_spearman(x, y, confidence)
    return {"n": n, "pearson_r": r, "pearson_ci_low": p_lo, "pearson_ci_high": p_hi, "pearson_p": p_value(r, n),
            "spearman_rho": rho, "spearman_ci_low": s_lo, "spearman_ci_high": s_hi, "spearman_p": p_value(rho, n),
            "spearman_boot_ci_low": b_lo, "spearman_boot_ci_high": b_hi}


def correlation_frame(points: pd.DataFrame, confidence: float) -> pd.DataFrame:
    scopes = [("all", points)] + [(f"start={s}", g) for s, g in points.groupby(points["start"].astype(str))]
    if points["start"].nunique(dropna=False) <= 1:
        scopes = scopes[:1]
    rows = []
    for scope, g in scopes:
        for s in SAFETY:
            for c in CAPABILITY:
                stats = correlate(g[c].to_numpy(dtype=float), g[s].to_numpy(dtype=float), confidence)
                if stats["n"] > 0:
                    rows.append({"scope": scope, "safety": s, "capability": c, **stats})
    return pd.DataFrame(rows, columns=COLUMNS)


def correlation_tables(points: pd.DataFrame, corr: pd.DataFrame) -> list[Table]:
    keep = ["checkpoint", "start", "model_size", "method", "domain", "lr", "engine", "seed", *CAPABILITY, *SAFETY]
    return [
        Table("safety_forgetting_correlation", "Safety degradation vs capability forgetting across trained "
              "checkpoints: Pearson r and Spearman ρ with Fisher-z intervals, t-test p, bootstrap interval of ρ",
              corr),
        Table("safety_forgetting_points", "Per trained checkpoint: forgetting and safety changes (positive = less "
              "safe) behind the correlation", points[[c for c in keep if c in points.columns]]),
    ]


def _fmt(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{v:+.2f}"


def draw_correlation(points: pd.DataFrame, corr: pd.DataFrame, folder: Path,
                     formats: list[str]) -> tuple[list[Figure], list[str]]:
    shown = [s for s in SAFETY
             if (np.isfinite(points[s].astype(float)) & np.isfinite(points["forgetting"].astype(float))).sum() >= 2]
    if not shown:
        return [], ["Safety vs forgetting: fewer than two trained checkpoints with both a safety change and "
                    "forgetting yet."]
    fig = new_figure(4.4 * len(shown) + 1.8, 4.2)
    axes = fig.subplots(1, len(shown), squeeze=False).ravel()
    for ax, s in zip(axes, shown):
        for method in known_methods_first(sorted(points["method"].astype(str).unique())):
            g = points[points["method"].astype(str) == method]
            for domain, gd in g.groupby(g["domain"].astype(str)):
                ax.scatter(gd["forgetting"], gd[s], s=36, marker=DOMAIN_MARKERS.get(domain, "o"),
                           color=method_colour(method), edgecolor="black", linewidth=0.4,
                           label=f"{method} · {domain}")
        row = corr[(corr["scope"] == "all") & (corr["safety"] == s) & (corr["capability"] == "forgetting")]
        if len(row):
            r = row.iloc[0]
            ax.set_title(f"ρ = {_fmt(r.spearman_rho)} [{_fmt(r.spearman_ci_low)}, {_fmt(r.spearman_ci_high)}], "
                         f"r = {_fmt(r.pearson_r)} (n={int(r.n)})", fontsize=9)
        ax.axhline(0, color="#999999", lw=0.6)
        ax.axvline(0, color="#999999", lw=0.6)
        ax.set_xlabel(CAPABILITY["forgetting"])
        ax.set_ylabel(SAFETY[s])
        ax.grid(alpha=0.3)
    handles: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="outside right center", fontsize=7)
    title = "Safety degradation vs capability forgetting"
    fig.suptitle(title, fontsize=12)
    caption = ("One point per trained checkpoint (seeds separate); up = less safe than its base, right = more "
               "forgetting. Panel titles: Spearman ρ with its Fisher-z interval and Pearson r over all points "
               "(bootstrap intervals and per-start scopes in the table safety_forgetting_correlation).")
    name = "safety-correlation"
    return [Figure(name, title, caption, save(fig, folder, name, formats))], []
