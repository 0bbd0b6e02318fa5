"""Forgetting vs model scale per method (plan §3.3): one figure per starting point, one panel per domain, one line
per method (split by learning rate where swept), seeds averaged with t-interval error bars.

Forgetting is −(retained change): above zero the model lost non-target capability. Sizes are placed in order of
parameter count, evenly spaced and labelled; a size a method was not run at is a gap in its line, not a zero.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stages.analyzer.figures.heatmap import heatmap_rows
from stages.analyzer.figures.style import Figure, method_colour, new_figure, save, slug
from stages.analyzer.order import DOMAINS, METHODS, STARTS, ordered, ordered_sizes, rank

LINESTYLES = ["-", "--", ":", "-."]


def draw_scale(summary_agg: pd.DataFrame, folder: Path, formats: list[str]) -> tuple[list[Figure], list[str]]:
    df = summary_agg[np.isfinite(summary_agg["forgetting"].astype(float))]
    df = df[~df["method"].astype(str).str.upper().eq("BASE")]
    if df.empty or df["model_size"].nunique() < 2:
        return [], ["Forgetting vs model scale: needs results at two or more model sizes."]
    df = heatmap_rows(df)
    sizes = ordered_sizes(df["model_size"])
    pos = {s: i for i, s in enumerate(sizes)}
    out = []
    for start in ordered(df["start"], STARTS):
        sub = df[df["start"] == start]
        if sub["model_size"].nunique() < 2:
            continue
        domains = ordered(sub["domain"], DOMAINS)
        fig = new_figure(4.4 * len(domains) + 1.6, 4.0)
        axes = fig.subplots(1, len(domains), squeeze=False).ravel()
        rows = sorted(sub["row"].unique(), key=lambda r: (rank(r.split()[0], METHODS), r))
        styles = {r: LINESTYLES[[x.split()[0] for x in rows[:i]].count(r.split()[0]) % 4] for i, r in enumerate(rows)}
        for ax, d in zip(axes, domains):
            for row in rows:
                g = sub[(sub["domain"] == d) & (sub["row"] == row)]
                if g.empty:
                    continue
                g = g.assign(p=g["model_size"].map(pos)).sort_values("p")
                lo, hi = g["forgetting_ci_low"].to_numpy(float), g["forgetting_ci_high"].to_numpy(float)
                y = g["forgetting"].to_numpy(float)
                err = np.nan_to_num(np.vstack([y - lo, hi - y]), nan=0.0)
                ax.errorbar(g["p"], y, yerr=err, marker="o", capsize=3, label=row, ls=styles[row],
                            color=method_colour(g["method"].iloc[0]))
            ax.axhline(0, color="#999999", lw=0.6)
            ax.set_xticks(range(len(sizes)), [str(s) for s in sizes])
            ax.set_xlabel("model size")
            ax.set_ylabel("forgetting = −retained change")
            ax.set_title(f"domain {d}", fontsize=10)
            ax.grid(alpha=0.3)
        seen: dict[str, object] = {}
        for ax in axes:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(lab, h)
        labels = [r for r in rows if r in seen]
        fig.legend([seen[r] for r in labels], labels, loc="outside right center", fontsize=8)
        title = f"Forgetting vs model scale — start {start}"
        fig.suptitle(title, fontsize=12)
        name = slug("scale", start)
        caption = "Seed-averaged forgetting (mean change lost on non-target capabilities) per method and size."
        out.append(Figure(name, title, caption, save(fig, folder, name, formats)))
    return out, [] if out else ["Forgetting vs model scale: no starting point has two or more sizes yet."]
