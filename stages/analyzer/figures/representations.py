"""Figures of the representations suite, one set per starting point and model size (seeds averaged):

- CKA per layer: one panel per (training domain, text set), one line per method — how much of each layer's
  geometry survives post-training on each kind of input (1 = the same up to a rotation and scale);
- probe accuracy per layer: one panel per training domain; the base's own probe (before, black), the base's probe
  applied to each method's model (dashed: the readout retained) and retrained on it (solid: still decodable), the
  shuffled-label control (grey dotted) and chance;
- weight-delta heatmaps: rows method · domain, columns module; the relative Frobenius norm ‖ΔW‖/‖W‖ and the
  effective rank of ΔW over its maximum (the stable rank over the maximum when only the randomized spectrum was
  computed), each averaged over layers; and ‖ΔW‖/‖W‖ per layer (averaged over the block's modules).

A condition without the numbers is a gap or a grey "missing" cell, never a zero.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.ticker import MaxNLocator

from stages.analyzer.figures.heatmap import heatmap_rows
from stages.analyzer.figures.style import MISSING_FACE, Figure, method_colour, new_figure, save, slug
from stages.analyzer.formatting import is_missing
from stages.analyzer.order import DOMAINS, METHODS, STARTS, ordered, rank, size_in_billions
from stages.analyzer.representations import RepTables, module_order

SETS = ["math", "code", "qa", "general"]


def _show(v: object) -> str:
    return "?" if is_missing(v) else str(v)


def _groups(df: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame]]:
    out = [(k, g) for k, g in df.groupby(["start", "model_size"], dropna=False)]
    return sorted(out, key=lambda kv: (rank(None if is_missing(kv[0][0]) else kv[0][0], STARTS),
                                       size_in_billions(None if is_missing(kv[0][1]) else kv[0][1])))


def _trained(df: pd.DataFrame) -> pd.DataFrame:
    return heatmap_rows(df[~df["method"].astype(str).str.upper().eq("BASE")])


def _rows_sorted(rows) -> list[str]:
    return sorted(set(rows), key=lambda r: (rank(r.split()[0], METHODS), r))


def _legend(fig, axes) -> None:
    seen: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside right center", fontsize=8)


def _emit(fig, kind: str, what: str, start: object, size: object, caption: str, folder: Path,
          formats: list[str]) -> Figure:
    title = f"{what} — start {_show(start)}, {_show(size)}"
    fig.suptitle(title, fontsize=12)
    name = slug(kind, _show(start), _show(size))
    return Figure(name, title, caption, save(fig, folder, name, formats))


def _layer_axis(ax, title: str) -> None:
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=9)


def draw_cka(cka: pd.DataFrame, folder: Path, formats: list[str]) -> list[Figure]:
    out = []
    for (start, size), sub in _groups(_trained(cka)):
        sub = sub[np.isfinite(sub["linear"].astype(float))]
        if sub.empty:
            continue
        domains, sets = ordered(sub["domain"], DOMAINS), ordered(sub["set"], SETS)
        fig = new_figure(3.2 * len(sets) + 1.8, 2.6 * len(domains) + 0.6)
        axes = fig.subplots(len(domains), len(sets), squeeze=False, sharey=True)
        for i, d in enumerate(domains):
            for j, s in enumerate(sets):
                ax = axes[i, j]
                for row in _rows_sorted(sub["row"]):
                    g = sub[(sub["domain"] == d) & (sub["set"] == s) & (sub["row"] == row)].sort_values("layer")
                    if len(g):
                        ax.plot(g["layer"], g["linear"], marker="o", ms=2.5, lw=1.3, label=row,
                                color=method_colour(g["method"].iloc[0]))
                ax.set_ylim(min(0.0, float(sub["linear"].min())), 1.02)
                _layer_axis(ax, f"trained on {d} · {s} texts")
                ax.set_xlabel("layer (0 = embeddings)" if i == len(domains) - 1 else "")
                ax.set_ylabel("linear CKA (base, post)" if j == 0 else "")
        _legend(fig, axes.ravel())
        caption = ("Linear CKA between the base's and the post-trained model's residual stream after each block, per "
                   "text set (debiased CKA in the table); 1 = unchanged up to rotation and scale.")
        out.append(_emit(fig, "representations_cka", "CKA per layer", start, size, caption, folder, formats))
    return out


def _base_curve(sub: pd.DataFrame) -> pd.Series:
    """The base's own probe accuracy per layer: its own evaluation's ``post``, else the trained runs' ``base``."""
    own = sub[sub["method"].astype(str).str.upper().eq("BASE")].groupby("layer")["post"].mean()
    return own if own.notna().any() else sub.groupby("layer")["base"].mean()


def draw_probes(probes: pd.DataFrame, folder: Path, formats: list[str]) -> list[Figure]:
    out = []
    for (start, size), sub in _groups(probes):
        trained = _trained(sub)
        before = _base_curve(sub).dropna()
        if before.empty:
            continue
        domains = ordered(trained["domain"], DOMAINS) or ["(base only)"]
        fig = new_figure(4.2 * len(domains) + 1.8, 3.6)
        axes = fig.subplots(1, len(domains), squeeze=False, sharey=True).ravel()
        control = sub.groupby("layer")["control"].mean().dropna()
        for ax, d in zip(axes, domains):
            ax.plot(before.index, before.to_numpy(), color="black", lw=2, marker="o", ms=3, label="base (before)")
            for row in _rows_sorted(trained["row"]):
                g = trained[(trained["domain"] == d) & (trained["row"] == row)].sort_values("layer")
                if g.empty:
                    continue
                c = method_colour(g["method"].iloc[0])
                ax.plot(g["layer"], g["post"], color=c, lw=1.3, label=f"{row} retrained")
                ax.plot(g["layer"], g["transfer"], color=c, lw=1.3, ls="--", label=f"{row} base probe")
            ax.plot(control.index, control.to_numpy(), color="#999999", ls=":", lw=1.2, label="shuffled-label control")
            ax.axhline(0.5, color="#bbbbbb", lw=0.8)
            ax.set_ylim(0.0, 1.02)
            _layer_axis(ax, f"trained on {d}")
            ax.set_xlabel("layer (0 = embeddings)")
        axes[0].set_ylabel("held-out accuracy (true/false NQ statements)")
        _legend(fig, axes)
        caption = ("Linear probe for true vs false NQ-open answers: the base's probe on the base (black), applied "
                   "unchanged to each post-trained model (dashed) and retrained on it (solid); chance is 0.5.")
        out.append(_emit(fig, "representations_probes", "Probe accuracy per layer", start, size, caption, folder,
                         formats))
    return out


def _heat(ax, grid: np.ndarray, rows: list[str], cols: list[str], title: str, fmt: str) -> None:
    cmap = colormaps["viridis"]
    ax.set_facecolor(MISSING_FACE)
    finite = grid[np.isfinite(grid)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1e-9,
                   aspect="auto", interpolation="nearest")
    if grid.shape[1] <= 12:
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                v = grid[i, j]
                text = "missing" if math.isnan(v) else format(v, fmt)
                light = not math.isnan(v) and (v - lo) / max(hi - lo, 1e-12) < 0.5
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="#777777" if math.isnan(v) else ("white" if light else "black"))
    tilt = len(cols) > 6 and len(cols) <= 12
    ax.set_xticks(range(len(cols)), cols, rotation=45 if tilt else 0, ha="right" if tilt else "center", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(im, ax=ax, shrink=0.8)


def _grid(df: pd.DataFrame, rows: list[str], cols: list, col: str, value: str) -> np.ndarray:
    grid = np.full((len(rows), len(cols)), math.nan)
    for r in df.itertuples():
        v = getattr(r, value)
        if r.label in rows and getattr(r, col) in cols and not is_missing(v):
            grid[rows.index(r.label), cols.index(getattr(r, col))] = float(v)
    return grid


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    t = _trained(df)
    return t.assign(label=[f"{r} · {_show(d)}" for r, d in zip(t["row"], t["domain"])])


def _label_order(df: pd.DataFrame) -> list[str]:
    keys = {lab: (rank(row.split()[0], METHODS), rank(d, DOMAINS), row) for lab, row, d in
            zip(df["label"], df["row"], df["domain"])}
    return sorted(keys, key=keys.get)


def draw_weights(by_module: pd.DataFrame, by_layer: pd.DataFrame, folder: Path, formats: list[str]) -> list[Figure]:
    out = []
    layers_of = dict(_groups(_labelled(by_layer))) if len(by_layer) else {}
    for (start, size), sub in _groups(_labelled(by_module)):
        if sub["rel_fro"].notna().sum() == 0:
            continue
        rows, modules = _label_order(sub), module_order(list(sub["module"].unique()))
        short = [m.split(".")[-1] for m in modules]
        exact = bool(sub["effective_rank_ratio"].notna().any())
        rank_col, rank_title = (("effective_rank_ratio", "effective rank of ΔW / max rank") if exact else
                                ("stable_rank_ratio", "stable rank of ΔW / max rank"))
        fig = new_figure(0.6 * len(modules) + 4.0, 2 * (0.32 * len(rows) + 1.3) + 0.5)
        axes = fig.subplots(2, 1, squeeze=False).ravel()
        _heat(axes[0], _grid(sub, rows, modules, "module", "rel_fro"), rows, short, "‖ΔW‖_F / ‖W‖_F", ".3f")
        _heat(axes[1], _grid(sub, rows, modules, "module", rank_col), rows, short, rank_title, ".2f")
        caption = ("Per method and training domain, averaged over layers: relative size of the update and how many "
                   "directions it spans (effective rank from the exact spectrum; stable rank when only randomized).")
        out.append(_emit(fig, "representations_weights", "Weight deltas by module", start, size, caption, folder,
                         formats))
        lay = layers_of.get((start, size))
        if lay is None or lay["rel_fro"].notna().sum() == 0:
            continue
        layers = sorted(int(v) for v in lay["layer"].dropna().unique())
        lrows = _label_order(lay)
        fig = new_figure(min(max(0.32 * len(layers) + 3.5, 6.0), 16.0), 0.32 * len(lrows) + 1.7)
        ax = fig.subplots()
        lay = lay.assign(layer=lay["layer"].astype(int))
        _heat(ax, _grid(lay, lrows, layers, "layer", "rel_fro"), lrows, [str(v) for v in layers],
              "‖ΔW‖_F / ‖W‖_F, mean over the block's modules", ".3f")
        ax.set_xlabel("layer")
        caption = "Relative size of the update in each decoder block, per method and training domain."
        out.append(_emit(fig, "representations_weights_layers", "Weight deltas by layer", start, size, caption,
                         folder, formats))
    return out


def draw_representations(t: RepTables, folder: Path, formats: list[str]) -> tuple[list[Figure], list[str]]:
    figures = draw_cka(t.cka, folder, formats) + draw_probes(t.probes, folder, formats)
    figures += draw_weights(t.weights_by_module, t.weights_by_layer, folder, formats)
    notes = list(t.notes)
    if not figures:
        notes.append("Representations (CKA, probes, weight deltas): no results of the representations suite yet.")
    return figures, notes
