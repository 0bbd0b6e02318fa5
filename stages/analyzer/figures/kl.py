"""Forgetting vs KL(base || post) on target prompts (RL's Razor, effect E3): one point per trained checkpoint
(seeds not averaged: each checkpoint has its own KL), colour by method, marker by domain, with the quadratic fit
over all points and its R² (``stages.analyzer.klfit``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stages.analyzer.figures.style import DOMAIN_MARKERS, Figure, known_methods_first, method_colour, new_figure, save


def draw_kl(points: pd.DataFrame, fit: pd.DataFrame, folder: Path,
            formats: list[str]) -> tuple[list[Figure], list[str]]:
    if points.empty:
        return [], ["Forgetting vs KL: no trained checkpoint has both KL on target prompts and forgetting yet."]
    fig = new_figure(6.8, 4.6)
    ax = fig.subplots()
    for method in known_methods_first(sorted(points["method"].astype(str).unique())):
        g = points[points["method"].astype(str) == method]
        for domain, gd in g.groupby(g["domain"].astype(str)):
            ax.scatter(gd["kl_target"], gd["forgetting"], color=method_colour(method),
                       marker=DOMAIN_MARKERS.get(domain, "o"), s=36, edgecolor="black", linewidth=0.4,
                       label=f"{method} · {domain}")
    row = fit.iloc[0]
    if np.isfinite(row["r2"]) or np.isfinite(row["a"]):
        xs = np.linspace(float(points["kl_target"].min()), float(points["kl_target"].max()), 200)
        ax.plot(xs, row["a"] * xs**2 + row["b"] * xs + row["c"], color="black", ls="--", lw=1,
                label=f"quadratic fit, R² = {row['r2']:.3f} (n={int(row['n'])})")
    ax.axhline(0, color="#999999", lw=0.6)
    ax.set_xlabel("KL(base || post) on target prompts")
    ax.set_ylabel("forgetting = −retained change")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    title = "Forgetting vs KL(base || post) on target prompts"
    ax.set_title(title, fontsize=11)
    caption = "One point per trained checkpoint; dashed: least-squares quadratic over all of them (effect E3)."
    return [Figure("kl_forgetting", title, caption, save(fig, folder, "kl_forgetting", formats))], []
