"""The two trade-off plots with their Pareto fronts (computed in ``stages.analyzer.pareto``):

- target gain vs retained change per method (effect E1), one figure per start and size, one panel per domain;
- safety score vs target score for the SAFE start (plan §2.3), one figure per size, one panel per domain, with the
  SAFE base drawn as a reference star (it is not a candidate for the front).

Each point is a condition (seeds averaged) with its t interval as error bars; points on the front get a black ring
and are joined by a dashed staircase.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from stages.analyzer.analysis import Analysis
from stages.analyzer.figures.heatmap import row_label
from stages.analyzer.figures.style import DOMAIN_MARKERS, Figure, method_colour, new_figure, save, slug
from stages.analyzer.formatting import is_missing
from stages.analyzer.order import DOMAINS, STARTS, ordered, rank, size_in_billions


def _err(lo: pd.Series, hi: pd.Series, mid: pd.Series) -> np.ndarray | None:
    lo, hi, mid = (s.to_numpy(dtype=float) for s in (lo, hi, mid))
    if not np.isfinite(lo).any():
        return None
    return np.nan_to_num(np.vstack([mid - lo, hi - mid]), nan=0.0)


def _draw_panel(ax, pts: pd.DataFrame, xlabel: str, ylabel: str, title: str, ref: tuple[float, float] | None,
                zero_lines: bool) -> None:
    vary_lr = pts.groupby(pts["method"].astype(str))["lr"].nunique(dropna=False).gt(1).to_dict()
    for p in pts.itertuples():
        c = method_colour(p.method)
        xerr = None if is_missing(getattr(p, "x_ci_low", math.nan)) else [[p.x - p.x_ci_low], [p.x_ci_high - p.x]]
        yerr = None if is_missing(getattr(p, "y_ci_low", math.nan)) else [[p.y - p.y_ci_low], [p.y_ci_high - p.y]]
        ax.errorbar(p.x, p.y, xerr=xerr, yerr=yerr, fmt=DOMAIN_MARKERS.get(str(p.domain), "o"), color=c, ms=7,
                    mec="black" if p.on_front else c, mew=1.8 if p.on_front else 0.5, capsize=2, lw=1)
        label = row_label(p.method, p.lr, p.engine, vary_lr.get(str(p.method), False), False)
        ax.annotate(label, (p.x, p.y), textcoords="offset points", xytext=(5, 4), fontsize=7, color=c)
    front = pts[pts["on_front"]].sort_values("x")
    if len(front):
        ax.step(front["x"], front["y"], where="post", ls="--", color="black", lw=1, label="Pareto front")
    if ref is not None and all(np.isfinite(ref)):
        ax.plot(*ref, marker="*", ms=14, color="gold", mec="black", ls="none", label="base")
    if zero_lines:
        ax.axhline(0, color="#999999", lw=0.6)
        ax.axvline(0, color="#999999", lw=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if len(front) or ref is not None:
        ax.legend(fontsize=7, loc="best")


def _figures(points: pd.DataFrame, folder: Path, formats: list[str], prefix: str, xlabel: str, ylabel: str,
             caption: str, refs: dict | None = None, zero_lines: bool = True) -> list[Figure]:
    pts = points[np.isfinite(points["x"].astype(float)) & np.isfinite(points["y"].astype(float))]
    out = []
    groups = pts.groupby(["start", "model_size"], dropna=False)
    for (start, size), sub in sorted(groups, key=lambda kv: (rank(kv[0][0], STARTS), size_in_billions(kv[0][1]))):
        domains = ordered(sub["domain"], DOMAINS) + (["?"] if sub["domain"].isna().any() else [])
        fig = new_figure(4.6 * len(domains) + 0.4, 4.2)
        axes = fig.subplots(1, len(domains), squeeze=False).ravel()
        for ax, d in zip(axes, domains):
            panel = sub[sub["domain"].isna()] if d == "?" else sub[sub["domain"] == d]
            ref = (refs or {}).get((start, size, d))
            _draw_panel(ax, panel, xlabel, ylabel, f"domain {d}", ref, zero_lines)
        title = f"{ylabel} vs {xlabel} — start {start}, {size}"
        fig.suptitle(title, fontsize=12)
        name = slug(prefix, start, size)
        out.append(Figure(name, title, caption, save(fig, folder, name, formats)))
    return out


def draw_target_tradeoff(points: pd.DataFrame, folder: Path, formats: list[str]) -> tuple[list[Figure], list[str]]:
    figs = _figures(points, folder, formats, "pareto_target", "target gain", "retained change",
                    "Each point is a method (seeds averaged, t interval bars); up and right is better. Ringed points "
                    "and the dashed staircase are the Pareto front of each panel.")
    return figs, [] if figs else ["Target gain vs retained change: no condition has both numbers yet."]


def safe_base_refs(a: Analysis) -> dict[tuple, tuple[float, float]]:
    """(start, size, domain) -> (target score, safety score) of the base the panel's results compare to, on the
    domain's own target tasks."""
    refs: dict[tuple, tuple[float, float]] = {}
    ck_of = a.runs.set_index("run_id")["checkpoint"]
    safety = a.safety.set_index("checkpoint")["safety_score"] if len(a.safety) else pd.Series(dtype=float)
    target = a.scores[(a.scores["capability"] == "target") & a.scores["primary"] & a.scores["base_run"].notna()]
    if target.empty:
        return refs
    target = target.merge(a.checkpoints[["checkpoint", "start", "model_size", "domain"]], on="checkpoint")
    for key, g in target.groupby(["start", "model_size", "domain"]):
        per_base = g.drop_duplicates(["base_run", "task", "metric"])
        safe = [float(safety.get(ck_of.get(b), math.nan)) for b in per_base["base_run"].unique()]
        safety_score = float(np.nanmean(safe)) if np.isfinite(safe).any() else math.nan
        refs[key] = (float(per_base["base_value"].mean()), safety_score)
    return refs


def draw_safety_tradeoff(points: pd.DataFrame, a: Analysis, folder: Path,
                         formats: list[str]) -> tuple[list[Figure], list[str]]:
    figs = _figures(points, folder, formats, "pareto_safety", "target score", "safety score",
                    "SAFE start: each point is a method (seeds averaged); safety score = mean of 1 − HarmBench ASR "
                    "and 1 − XSTest unsafe compliance. The star is the SAFE base; ringed points form the Pareto "
                    "front.",
                    refs=safe_base_refs(a), zero_lines=False)
    return figs, [] if figs else ["Safety vs task performance: no SAFE-start checkpoint with safety results yet."]
