"""The forgetting heatmap (plan §1.2): method × domain, one panel per capability group, one figure per starting
point and model size.

Cells hold the seed-averaged change of the capability against the run's base (positive = better), on a diverging
colour map centred on zero with symmetric limits shared by all forgetting panels (the target panel, whose gains
are usually much larger, gets its own symmetric scale and colour bar), with the value written in the cell. A
method × domain pair not run yet is a grey cell reading "missing", never a zero. Rows are methods, split by
learning rate or engine where the study sweeps them; a figure lists the methods run at its start and size, and
every domain of the study; methods planned but not finished (their evaluator manifests carry the conductor's
labels) are listed too, with missing cells.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from stages.analyzer.figures.style import DIVERGING, MISSING_FACE, Figure, new_figure, save, slug
from stages.analyzer.formatting import is_missing
from stages.analyzer.frames import CONDITION
from stages.analyzer.order import DOMAINS, METHODS, STARTS, ordered, ordered_capabilities, rank, size_in_billions

NCOLS = 4
TARGET = "target"


def row_label(method: object, lr: object, engine: object, vary_lr: bool, vary_engine: bool) -> str:
    label = str(method)
    if vary_lr:
        label += f" lr={'?' if is_missing(lr) else f'{float(lr):g}'}"
    if vary_engine:
        label += f" [{'?' if is_missing(engine) else engine}]"
    return label


def heatmap_rows(agg: pd.DataFrame) -> pd.DataFrame:
    """Add the row label of each condition (method, with lr/engine when a method has several)."""
    df = agg.copy()
    lr_key = df["lr"].map(lambda v: None if is_missing(v) else float(v))
    vary_lr = {m for m, g in lr_key.groupby(df["method"].astype(str)) if g.nunique(dropna=False) > 1}
    vary_engine = {m for m, g in df.groupby(df["method"].astype(str))["engine"] if g.nunique(dropna=False) > 1}
    df["row"] = [
        row_label(m, lr, e, str(m) in vary_lr, str(m) in vary_engine)
        for m, lr, e in zip(df["method"], df["lr"], df["engine"])
    ]
    return df


def _draw_panel(ax, grid: np.ndarray, rows: list[str], domains: list[str], title: str, norm: Normalize, cmap,
                show_rows: bool) -> None:
    masked = np.ma.masked_invalid(grid)
    ax.set_facecolor(MISSING_FACE)
    ax.imshow(masked, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    size = 9 if len(domains) <= 3 else 7
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid[i, j]
            if math.isnan(v):
                ax.text(j, i, "missing", ha="center", va="center", fontsize=size - 1, color="#777777")
            else:
                dark = abs(norm(v) - 0.5) > 0.3
                ax.text(j, i, f"{v:+.3f}", ha="center", va="center", fontsize=size,
                        color="white" if dark else "black")
    ax.set_xticks(range(len(domains)), domains)
    ax.set_yticks(range(len(rows)), rows if show_rows else [""] * len(rows))
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=10)


def _symmetric(values: pd.Series) -> Normalize:
    v = values.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    lim = max(float(np.abs(v).max()), 1e-9) if v.size else 1.0
    return Normalize(-lim, lim)


def _show(v: object) -> str:
    return "?" if is_missing(v) else str(v)


def _panel_key(start: object, size: object) -> tuple:
    return (rank(None if is_missing(start) else start, STARTS), size_in_billions(None if is_missing(size) else size))


def layout(cap_agg: pd.DataFrame, planned: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[str], dict]:
    """Rows labelled, the study's domains, and per (start, size) figure the methods it lists: those with results
    plus those planned but not finished (``planned``: the labels of unfinished runs), whose cells read missing."""
    trained = cap_agg[~cap_agg["method"].astype(str).str.upper().eq("BASE")]
    extra = pd.DataFrame(columns=CONDITION)
    if planned is not None and len(planned):
        extra = planned[planned["method"].notna() & ~planned["method"].astype(str).str.upper().eq("BASE")]
        extra = extra[CONDITION].assign(capability=None, change=math.nan)
    df = heatmap_rows(pd.concat([trained, extra], ignore_index=True) if len(extra) else trained)
    domains = ordered(df["domain"], DOMAINS)
    rows = {}
    for key, g in df.groupby(["start", "model_size"], dropna=False):
        rows[key] = sorted(g["row"].unique(), key=lambda r: (rank(r.split()[0], METHODS), r))
    return df, domains, rows


def draw_heatmaps(cap_agg: pd.DataFrame, folder: Path, formats: list[str],
                  planned: pd.DataFrame | None = None) -> tuple[list[Figure], list[str]]:
    if cap_agg.empty or cap_agg["change"].notna().sum() == 0:
        return [], ["Forgetting heatmap: no trained checkpoint with a base to compare to yet."]
    df, domains, rows_of = layout(cap_agg, planned)
    caps = ordered_capabilities(df["capability"].dropna())
    out = []
    # the fullest grid first (the study's main start and size), then the others in start and size order
    groups = [(k, g) for k, g in df.groupby(["start", "model_size"], dropna=False) if g["change"].notna().any()]
    groups.sort(key=lambda kv: (-int(kv[1]["change"].notna().sum()), _panel_key(*kv[0])))
    for (start, size), sub in groups:
        all_rows = rows_of[(start, size)]
        cmap = colormaps[DIVERGING]
        norm = _symmetric(sub.loc[sub["capability"] != TARGET, "change"])
        target_norm = _symmetric(sub.loc[sub["capability"] == TARGET, "change"])
        ncols = min(NCOLS, len(caps))
        nrows = math.ceil(len(caps) / ncols)
        fig = new_figure(ncols * (0.95 * len(domains) + 1.2) + 1.6, nrows * (0.42 * len(all_rows) + 1.0) + 0.8)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for k, cap in enumerate(caps):
            grid = np.full((len(all_rows), len(domains)), math.nan)
            for r in sub[sub["capability"] == cap].itertuples():
                if r.domain in domains and not is_missing(r.change):
                    grid[all_rows.index(r.row), domains.index(r.domain)] = r.change
            panel_norm = target_norm if cap == TARGET else norm
            _draw_panel(axes[k], grid, all_rows, domains, cap, panel_norm, cmap, show_rows=k % ncols == 0)
            if cap == TARGET and len(caps) > 1:
                fig.colorbar(ScalarMappable(norm=target_norm, cmap=cmap), ax=axes[k], shrink=0.8, location="bottom",
                             label="target change")
        for ax in axes[len(caps) :]:
            ax.set_axis_off()
        shared = [ax for cap, ax in zip(caps, axes) if cap != TARGET or len(caps) == 1]
        fig.colorbar(ScalarMappable(norm=norm if len(caps) > 1 else target_norm, cmap=cmap), ax=shared,
                     shrink=0.8, label="change vs base (+ better, − forgot)")
        title = f"Forgetting heatmap — start {_show(start)}, {_show(size)}"
        fig.suptitle(title, fontsize=12)
        name = slug("heatmap", _show(start), _show(size))
        files = save(fig, folder, name, formats)
        caption = ("Seed-averaged change of each capability against the base (method × domain): red = lost, "
                   "blue = gained, grey = not run yet.")
        out.append(Figure(name, title, caption, files))
    return out, []
