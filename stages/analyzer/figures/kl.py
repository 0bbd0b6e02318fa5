"""Forgetting vs KL(base || post) on target prompts (RL's Razor, effect E3): one point per trained checkpoint
(seeds not averaged: each checkpoint has its own KL), colour by method, marker by domain, with the quadratic fit
over all points and its R² (``stages.analyzer.klfit``).

The KL is the exact per-token one, summed over each base sample and averaged, with its standard error as a
horizontal bar; a checkpoint whose results have only the Monte Carlo figure (written before the exact one) is
drawn hollow and the caption says how many there are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stages.analyzer.figures.style import DOMAIN_MARKERS, Figure, known_methods_first, method_colour, new_figure, save
from stages.analyzer.kl_values import MONTE_CARLO


def draw_kl(points: pd.DataFrame, fit: pd.DataFrame, folder: Path,
            formats: list[str]) -> tuple[list[Figure], list[str]]:
    if points.empty:
        return [], ["Forgetting vs KL: no trained checkpoint has both KL on target prompts and forgetting yet."]
    fig = new_figure(6.8, 4.6)
    ax = fig.subplots()
    for method in known_methods_first(sorted(points["method"].astype(str).unique())):
        g = points[points["method"].astype(str) == method]
        for domain, gd in g.groupby(g["domain"].astype(str)):
            colour, marker = method_colour(method), DOMAIN_MARKERS.get(domain, "o")
            err = gd["kl_target_stderr"].astype(float)
            if err.notna().any():
                ax.errorbar(gd["kl_target"], gd["forgetting"], xerr=err.fillna(0.0), fmt="none", ecolor=colour,
                            elinewidth=0.8, alpha=0.7)
            mc = gd["kl_estimator"].eq(MONTE_CARLO)
            for part, hollow in ((gd[~mc], False), (gd[mc], True)):
                if len(part):
                    look = ({"facecolor": "none", "edgecolor": colour, "linewidth": 0.9} if hollow
                            else {"facecolor": colour, "edgecolor": "black", "linewidth": 0.4})
                    ax.scatter(part["kl_target"], part["forgetting"], marker=marker, s=36, **look,
                               label=f"{method} · {domain}" + (" (Monte Carlo KL)" if hollow else ""))
    row = fit.iloc[0]
    if np.isfinite(row["r2"]) or np.isfinite(row["a"]):
        xs = np.linspace(float(points["kl_target"].min()), float(points["kl_target"].max()), 200)
        ax.plot(xs, row["a"] * xs**2 + row["b"] * xs + row["c"], color="black", ls="--", lw=1,
                label=f"quadratic fit, R² = {row['r2']:.3f} (n={int(row['n'])})")
    ax.axhline(0, color="#999999", lw=0.6)
    ax.set_xlabel("KL(base || post) on target prompts: exact per token, summed per sample")
    ax.set_ylabel("forgetting = −retained change")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    title = "Forgetting vs KL(base || post) on target prompts"
    ax.set_title(title, fontsize=11)
    caption = ("One point per trained checkpoint, its KL summed exactly over the vocabulary at every position of "
               "the base's samples (bar: standard error over samples); dashed: least-squares quadratic over all of "
               "them (effect E3).")
    mc = int(points["kl_estimator"].eq(MONTE_CARLO).sum())
    if mc:
        caption += (f" Hollow: {mc} checkpoint(s) whose results have only the Monte Carlo KL (sum of sampled "
                    "log-ratios; noisier, can be negative).")
    return [Figure("kl_forgetting", title, caption, save(fig, folder, "kl_forgetting", formats))], []
