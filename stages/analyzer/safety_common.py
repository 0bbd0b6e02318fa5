"""What the safety analyses (correlation, categories, attacks, refusal direction, examples) share: reading a
versioned ``extensions`` block defensively, the base checkpoint of each checkpoint, row labels and panel order, and
the one heatmap they draw.

``results.json`` validates without looking inside ``extensions``, so a block of another version, or one that is not
what its writer's version says (version 1 of ``attacks`` and ``refusal_direction``, written by the evaluator's
suites of those names), is left out with a note naming the results file, never guessed at.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Normalize

from stages.analyzer.analysis import Analysis, with_labels
from stages.analyzer.figures.heatmap import heatmap_rows
from stages.analyzer.figures.style import MISSING_FACE, Figure, save, slug
from stages.analyzer.formatting import is_missing
from stages.analyzer.frames import CONDITION
from stages.analyzer.gather import Gathered
from stages.analyzer.order import DOMAINS, METHODS, STARTS, rank, size_in_billions, sort_frame
from stages.analyzer.stats import aggregate


def number(v: Any) -> float:
    """A JSON number as float; anything else (null, text, a boolean) as NaN."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def read_blocks(g: Gathered, name: str, version: int, what: str,
                check: Callable[[dict[str, Any]], None]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """run_id -> the ``extensions[name]`` block of each result that has a readable one; notes for the others.

    ``check`` raises ``ValueError`` (its message says what is wrong) on a block that is not what ``version`` writes.
    """
    blocks, notes = {}, []
    for r in g.records:
        block = r.results.extensions.get(name)
        if block is None:
            continue
        try:
            if not isinstance(block, dict) or block.get("version") != version:
                got = block.get("version") if isinstance(block, dict) else "?"
                raise ValueError(f"version {got}, this analyzer reads version {version}")
            check(block)
        except (ValueError, TypeError, KeyError) as e:
            notes.append(f"{what} of {r.run_id} ({r.source.results_uri}) left out: {e}.")
            continue
        blocks[r.run_id] = block
    return blocks, notes


def per_checkpoint(blocks: dict[str, Any], a: Analysis) -> dict[str, Any]:
    """checkpoint -> the value of its first result (by run id) that has one."""
    out: dict[str, Any] = {}
    for rid, ck in sorted(zip(a.runs["run_id"], a.runs["checkpoint"]), key=lambda p: str(p[0])):
        if rid in blocks and isinstance(ck, str):
            out.setdefault(ck, blocks[rid])
    return out


def base_checkpoints(a: Analysis) -> dict[str, str]:
    """checkpoint -> the checkpoint of its results' base (the first matched base by run id); bases map to none."""
    ck_of = dict(zip(a.runs["run_id"], a.runs["checkpoint"]))
    out: dict[str, str] = {}
    done = a.runs[a.runs["state"] == "succeeded"].sort_values("run_id")
    for ck, base in zip(done["checkpoint"], done["matched_base"]):
        if isinstance(base, str) and isinstance(ck_of.get(base), str):
            out.setdefault(ck, ck_of[base])
    return out


def by_condition(df: pd.DataFrame, a: Analysis, keys: list[str], cols: list[str], confidence: float) -> pd.DataFrame:
    """Per-checkpoint rows labelled and seed-aggregated per condition and ``keys`` (mean, sd, n, t interval)."""
    labelled = with_labels(df.astype({"checkpoint": object}), a.checkpoints)
    return sort_frame(aggregate(labelled, CONDITION + keys, cols, confidence))


def emit(fig, kind: str, what: str, start: object, size: object, caption: str, folder: Path, formats: list[str],
         fontsize: int = 12) -> Figure:
    """Title the figure for its start and size, save it and return its record."""
    title = f"{what} — start {show(start)}, {show(size)}"
    fig.suptitle(title, fontsize=fontsize)
    name = slug(kind, show(start), show(size))
    return Figure(name, title, caption, save(fig, folder, name, formats))


def rate_axes(ax, rows: list[str], ylabel: str, legend_title: str | None = None) -> None:
    """The axes of a bar chart of rates per condition row: labels, 0-1 scale, legend outside on the right."""
    ax.set_xticks(range(len(rows)), rows, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, title=legend_title, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def labelled_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``label`` (method, with lr/engine where a method has several, and the training domain) to condition
    rows; the base reads "BASE"."""
    t = heatmap_rows(df.reset_index(drop=True))
    return t.assign(label=[r if is_missing(d) else f"{r} · {d}" for r, d in zip(t["row"], t["domain"])])


def label_order(df: pd.DataFrame) -> list[str]:
    keys = {lab: (rank(row.split()[0], METHODS), rank(None if is_missing(d) else d, DOMAINS), row)
            for lab, row, d in zip(df["label"], df["row"], df["domain"])}
    return sorted(keys, key=keys.get)


def show(v: object) -> str:
    return "?" if is_missing(v) else str(v)


def panels(df: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame]]:
    """Groups of one start and model size, in the plan's order."""
    out = [(k, g) for k, g in df.groupby(["start", "model_size"], dropna=False)]
    return sorted(out, key=lambda kv: (rank(None if is_missing(kv[0][0]) else kv[0][0], STARTS),
                                       size_in_billions(None if is_missing(kv[0][1]) else kv[0][1])))


def grid_of(df: pd.DataFrame, rows: list[str], cols: list, col: str, value: str) -> np.ndarray:
    grid = np.full((len(rows), len(cols)), math.nan)
    for lab, c, v in zip(df["label"], df[col], df[value]):
        if lab in rows and c in cols and not is_missing(v):
            grid[rows.index(lab), cols.index(c)] = float(v)
    return grid


def heat(ax, grid: np.ndarray, rows: list[str], cols: list[str], title: str, cmap_name: str, norm: Normalize,
         fmt: str = "+.2f", colorbar: str = "") -> None:
    """One heatmap panel: missing cells grey and labelled, values written in the cells when there is room."""
    cmap = colormaps[cmap_name]
    ax.set_facecolor(MISSING_FACE)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    if grid.shape[1] <= 14:
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                v = grid[i, j]
                if math.isnan(v):
                    ax.text(j, i, "missing", ha="center", va="center", fontsize=7, color="#777777")
                    continue
                r, g, b, _ = cmap(norm(v))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # the cell's luminance decides the text colour
                ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=7, color="white" if dark else "black")
    tilt = len(cols) > 5
    ax.set_xticks(range(len(cols)), cols, rotation=40 if tilt else 0, ha="right" if tilt else "center", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label=colorbar)


def symmetric(values: np.ndarray, at_least: float = 1e-9) -> Normalize:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    lim = max(float(np.abs(v).max()) if v.size else 1.0, at_least)
    return Normalize(-lim, lim)
