"""The forgetting heatmap (plan §1.2): method × domain, one panel per capability group, one figure per starting
point and model size.

Cells hold the seed-averaged change of the capability against the run's base (positive = better), on a diverging
colour map centred on zero with symmetric limits shared by all forgetting panels (the target panel, whose gains
are usually much larger, gets its own symmetric scale and colour bar), with the value written in the cell. A change
within the cell's noise band (``stages.analyzer.noise``: the base-vs-base flip rate of its tasks where the study
measured one, else a documented floor) is drawn in the map's neutral centre colour with its value in grey, whatever
the scale: float noise of ±1e-9 is never painted as a loss or a gain; the figure's legend says so. A method × domain
pair not run yet is a grey cell reading "missing", never a zero. Rows are methods, split by learning rate or engine
where the study sweeps them; a figure lists the methods run at its start and size, and every domain of the study;
methods planned but not finished (their evaluator manifests carry the conductor's labels) are listed too, with
missing cells.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_rgba
from matplotlib.patches import Patch

from stages.analyzer.figures.style import DIVERGING, MISSING_FACE, Figure, new_figure, save, slug
from stages.analyzer.formatting import is_missing
from stages.analyzer.frames import CONDITION
from stages.analyzer.noise import key
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


def cell_faces(grid: np.ndarray, band: np.ndarray, norm: Normalize, cmap) -> tuple[np.ndarray, np.ndarray]:
    """RGBA of each cell (missing: grey; |change| <= band: the map's neutral centre; else its colour) and the mask
    of the neutral ones."""
    finite = np.isfinite(grid)
    neutral = finite & (np.abs(np.where(finite, grid, 0.0)) <= band)
    faces = cmap(norm(np.where(finite, grid, 0.0)))
    faces[neutral] = cmap(0.5)
    faces[~finite] = to_rgba(MISSING_FACE)
    return faces, neutral


def _draw_panel(ax, grid: np.ndarray, band: np.ndarray, rows: list[str], domains: list[str], title: str,
                norm: Normalize, cmap, show_rows: bool) -> None:
    faces, neutral = cell_faces(grid, band, norm, cmap)
    ax.imshow(faces, aspect="auto", interpolation="nearest")
    size = 9 if len(domains) <= 3 else 7
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid[i, j]
            if math.isnan(v):
                ax.text(j, i, "missing", ha="center", va="center", fontsize=size - 1, color="#777777")
            else:
                dark = not neutral[i, j] and abs(norm(v) - 0.5) > 0.3
                ax.text(j, i, f"{v:+.3f}", ha="center", va="center", fontsize=size,
                        color="#8c8c8c" if neutral[i, j] else "white" if dark else "black")
    ax.set_xticks(range(len(domains)), domains)
    ax.set_yticks(range(len(rows)), rows if show_rows else [""] * len(rows))
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=10)


def _symmetric(values: pd.Series, at_least: float = 1e-9) -> Normalize:
    v = values.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    lim = max(float(np.abs(v).max()) if v.size else 1.0, at_least)
    return Normalize(-lim, lim)


def band_legend(bands: pd.DataFrame, floor: float) -> str:
    """What the neutral colour means, with the flip rates actually measured."""
    rates = bands["noise_flip_rate"].astype(float).dropna() if len(bands) else pd.Series(dtype=float)
    if rates.empty:
        return f"within noise: |change| ≤ {floor:g} (the floor; no base-vs-base flip rate measured)"
    lo, hi = float(rates.min()), float(rates.max())
    rate = f"{lo:.3g}" if math.isclose(lo, hi) else f"{lo:.3g}–{hi:.3g}"
    return f"within noise: |change| ≤ the larger of the base-vs-base flip rate ({rate}) and the floor {floor:g}"


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


def _with_bands(df: pd.DataFrame, bands: pd.DataFrame | None, floor: float) -> pd.DataFrame:
    cols = CONDITION + ["capability"]
    by_key = {} if bands is None else {key(r, cols): (r.band, r.noise_flip_rate) for r in bands.itertuples()}
    found = [by_key.get(key(r, cols), (floor, math.nan)) for r in df[cols].itertuples()]
    return df.assign(band=[max(float(b), floor) for b, _ in found], noise_flip_rate=[f for _, f in found])


def draw_heatmaps(cap_agg: pd.DataFrame, folder: Path, formats: list[str], planned: pd.DataFrame | None = None,
                  bands: pd.DataFrame | None = None, floor: float = 1e-3) -> tuple[list[Figure], list[str]]:
    """``bands``: the noise band per condition × capability (``stages.analyzer.noise.noise_bands``); cells it does
    not cover use ``floor``."""
    if cap_agg.empty or cap_agg["change"].notna().sum() == 0:
        return [], ["Forgetting heatmap: no trained checkpoint with a base to compare to yet."]
    df, domains, rows_of = layout(cap_agg, planned)
    df = _with_bands(df, bands, floor)
    caps = ordered_capabilities(df["capability"].dropna())
    out = []
    # the fullest grid first (the study's main start and size), then the others in start and size order
    groups = [(k, g) for k, g in df.groupby(["start", "model_size"], dropna=False) if g["change"].notna().any()]
    groups.sort(key=lambda kv: (-int(kv[1]["change"].notna().sum()), _panel_key(*kv[0])))
    for (start, size), sub in groups:
        all_rows = rows_of[(start, size)]
        cmap = colormaps[DIVERGING]
        rest, target = sub[sub["capability"] != TARGET], sub[sub["capability"] == TARGET]
        norm = _symmetric(rest["change"], float(rest["band"].max()) if len(rest) else 1e-9)
        target_norm = _symmetric(target["change"], float(target["band"].max()) if len(target) else 1e-9)
        ncols = min(NCOLS, len(caps))
        nrows = math.ceil(len(caps) / ncols)
        fig = new_figure(ncols * (0.95 * len(domains) + 1.2) + 1.6, nrows * (0.42 * len(all_rows) + 1.0) + 1.2)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for k, cap in enumerate(caps):
            grid = np.full((len(all_rows), len(domains)), math.nan)
            band = np.full(grid.shape, floor)
            for r in sub[sub["capability"] == cap].itertuples():
                if r.domain in domains and not is_missing(r.change):
                    at = all_rows.index(r.row), domains.index(r.domain)
                    grid[at], band[at] = r.change, r.band
            panel_norm = target_norm if cap == TARGET else norm
            _draw_panel(axes[k], grid, band, all_rows, domains, cap, panel_norm, cmap, show_rows=k % ncols == 0)
            if cap == TARGET and len(caps) > 1:
                fig.colorbar(ScalarMappable(norm=target_norm, cmap=cmap), ax=axes[k], shrink=0.8, location="bottom",
                             label="target change")
        for ax in axes[len(caps) :]:
            ax.set_axis_off()
        shared = [ax for cap, ax in zip(caps, axes) if cap != TARGET or len(caps) == 1]
        fig.colorbar(ScalarMappable(norm=norm if len(caps) > 1 else target_norm, cmap=cmap), ax=shared,
                     shrink=0.8, label="change vs base (+ better, − forgot)")
        legend = band_legend(sub.drop_duplicates(CONDITION + ["capability"]).dropna(subset=["capability"]), floor)
        fig.legend(handles=[Patch(facecolor=cmap(0.5), edgecolor="#999999", label=legend),
                            Patch(facecolor=MISSING_FACE, edgecolor="#999999", label="missing: not run yet")],
                   loc="outside lower center", ncols=2, fontsize=8, frameon=False)
        title = f"Forgetting heatmap — start {_show(start)}, {_show(size)}"
        fig.suptitle(title, fontsize=12)
        name = slug("heatmap", _show(start), _show(size))
        files = save(fig, folder, name, formats)
        caption = ("Seed-averaged change of each capability against the base (method × domain): red = lost, "
                   "blue = gained, grey = not run yet; a change within its noise band (the base-vs-base flip rate "
                   f"of its tasks where measured, else the floor {floor:g}) is drawn neutral with its value in grey "
                   "(bands per cell: table heatmap_noise_bands).")
        out.append(Figure(name, title, caption, files))
    return out, []
