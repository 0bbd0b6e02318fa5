"""Refusal-direction attenuation per method and layer (Arditi et al., 2024), from the evaluator's
``extensions["refusal_direction"]`` block (version 1): per layer, the cosine between this checkpoint's own
difference-in-means direction and the SAFE baseline's, and the mean projection of harmful-prompt activations onto the
baseline's direction, for this checkpoint and for the baseline; plus refusal rates with no intervention, under
directional ablation (harmful prompts) and under addition (harmless prompts).

Attenuation per layer = 1 − projection / base projection: 0 = the direction is read as strongly as in the baseline,
1 = not at all (missing where the base projection is 0). Per condition the layers are seed-aggregated; the figure,
one per start and size, is a heatmap method × layer of the cosine and of the attenuation, and a second one shows the
three refusal rates per method.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize

from stages.analyzer.analysis import Analysis
from stages.analyzer.figures.style import Figure, new_figure
from stages.analyzer.gather import Gathered
from stages.analyzer.safety_common import by_condition, emit, grid_of, heat, label_order, labelled_rows, number
from stages.analyzer.safety_common import panels, per_checkpoint, rate_axes, read_blocks, symmetric
from stages.analyzer.tables import Table

NAME, VERSION = "refusal_direction", 1
LAYER_LISTS = ["cosine_per_layer", "projection_per_layer", "base_projection_per_layer"]
LAYER_VALUES = ["cosine", "projection", "base_projection", "attenuation"]
MODES = ["none", "ablation", "addition"]
RATE_VALUES = [f"refusal_rate_{m}" for m in MODES] + [f"refusal_score_{m}" for m in MODES]
MODE_COLOURS = {"none": "#555555", "ablation": "#d62728", "addition": "#1f77b4"}


def _check(block: dict[str, Any]) -> None:
    lists = [block.get(k) for k in LAYER_LISTS]
    if not all(isinstance(v, list) for v in lists):
        raise ValueError(f"{', '.join(LAYER_LISTS)} must be lists")
    n = block.get("n_layers")
    if any(len(v) != n for v in lists):
        raise ValueError(f"per-layer lists of lengths {[len(v) for v in lists]} for n_layers {n}")
    for k in ("refusal_rate", "refusal_score"):
        if not isinstance(block.get(k, {}), dict):
            raise ValueError(f"'{k}' is not a mapping of none/ablation/addition")


def attenuation(projection: float, base: float) -> float:
    return 1.0 - projection / base if math.isfinite(projection) and math.isfinite(base) and base != 0 else math.nan


def direction_frames(g: Gathered, a: Analysis) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(per checkpoint × layer, per checkpoint: layer chosen, refusal rates and scores, counts), notes."""
    blocks, notes = read_blocks(g, NAME, VERSION, "Refusal direction", _check)
    layers, rates = [], []
    for ck, b in sorted(per_checkpoint(blocks, a).items()):
        for i, (cos, proj, base) in enumerate(zip(*(b[k] for k in LAYER_LISTS))):
            p, bp = number(proj), number(base)
            layers.append({"checkpoint": ck, "layer": i, "cosine": number(cos), "projection": p,
                           "base_projection": bp, "attenuation": attenuation(p, bp)})
        row: dict[str, Any] = {"checkpoint": ck, "source": b.get("source"), "direction_layer": number(b.get("layer")),
                               "position": number(b.get("position")), "n_harmful": number(b.get("n_harmful")),
                               "n_harmless": number(b.get("n_harmless"))}
        for m in MODES:
            row[f"refusal_rate_{m}"] = number((b.get("refusal_rate") or {}).get(m))
            row[f"refusal_score_{m}"] = number((b.get("refusal_score") or {}).get(m))
        rates.append(row)
    return (pd.DataFrame(layers, columns=["checkpoint", "layer", *LAYER_VALUES]),
            pd.DataFrame(rates, columns=["checkpoint", "source", "direction_layer", "position", "n_harmful",
                                         "n_harmless", *RATE_VALUES]), notes)


def direction_tables(g: Gathered, a: Analysis, confidence: float
                     ) -> tuple[list[Table], pd.DataFrame, pd.DataFrame, list[str]]:
    """Tables (none when no result has the block), per-condition layer and rate frames for the figures, notes."""
    layers, rates, notes = direction_frames(g, a)
    if layers.empty and rates.empty:
        return [], layers, rates, notes

    by_layer = by_condition(layers, a, ["layer"], LAYER_VALUES, confidence)
    by_rate = by_condition(rates, a, [], ["direction_layer", *RATE_VALUES], confidence)
    tables = [
        Table("safety_refusal_direction", "Refusal direction per condition and layer: cosine with the SAFE "
              "baseline's direction, projection of harmful prompts (own, base) and attenuation = 1 − own/base; seeds "
              "aggregated", by_layer),
        Table("safety_refusal_rates", "Refusal rates and scores with no intervention, under directional ablation "
              "(harmful prompts) and under addition (harmless prompts); seeds aggregated", by_rate),
    ]
    return tables, by_layer, by_rate, notes


def _draw_layers(by_layer: pd.DataFrame, folder: Path, formats: list[str]) -> list[Figure]:
    out = []
    for (start, size), sub in panels(by_layer):
        if sub[["cosine", "attenuation"]].notna().sum().sum() == 0:
            continue
        sub = labelled_rows(sub.assign(layer=sub["layer"].astype(int)))
        rows, layers = label_order(sub), sorted(set(sub["layer"]))
        cols = [str(v) for v in layers]
        fig = new_figure(min(max(0.42 * len(layers) + 4.0, 7.0), 18.0), 2 * (0.34 * len(rows) + 1.2) + 0.8)
        axes = fig.subplots(2, 1, squeeze=False).ravel()
        heat(axes[0], grid_of(sub, rows, layers, "layer", "cosine"), rows, cols,
             "cosine(own direction, SAFE baseline's direction)", "viridis", Normalize(-1.0, 1.0), ".2f")
        att = grid_of(sub, rows, layers, "layer", "attenuation")
        heat(axes[1], att, rows, cols, "attenuation = 1 − projection / base projection", "RdBu_r",
             symmetric(att, 1.0), "+.2f")
        axes[1].set_xlabel("layer")
        caption = ("Top: how closely each checkpoint's own harmful-minus-harmless direction follows the SAFE "
                   "baseline's (1 = same). Bottom: how much less its harmful-prompt activations project onto the "
                   "baseline's direction (red = attenuated, 0 = as in the baseline); seed means, grey = missing.")
        out.append(emit(fig, "safety-direction", "Refusal direction by layer", start, size, caption, folder,
                        formats))
    return out


def _draw_rates(by_rate: pd.DataFrame, folder: Path, formats: list[str]) -> list[Figure]:
    out = []
    for (start, size), sub in panels(by_rate):
        cols = [f"refusal_rate_{m}" for m in MODES]
        if sub[cols].notna().sum().sum() == 0:
            continue
        sub = labelled_rows(sub).set_index("label")
        rows = label_order(sub.reset_index())
        fig = new_figure(max(0.9 * len(rows) + 3.0, 6.0), 4.2)
        ax = fig.subplots()
        width = 0.8 / len(MODES)
        for k, m in enumerate(MODES):
            ys = np.array([float(sub[f"refusal_rate_{m}"].get(r, math.nan)) for r in rows])
            xs = np.arange(len(rows)) + (k - 1) * width
            ax.bar(xs, np.nan_to_num(ys), width, color=MODE_COLOURS[m], edgecolor="black", linewidth=0.4,
                   label={"none": "no intervention (harmful)", "ablation": "direction ablated (harmful)",
                          "addition": "direction added (harmless)"}[m])
        rate_axes(ax, rows, "refusal rate")
        caption = ("Refusal rate on harmful prompts as is and with the SAFE baseline's direction projected out of "
                   "the residual stream, and on harmless prompts with the direction added (seed means).")
        out.append(emit(fig, "safety-refusal-rates", "Refusal under directional ablation and addition", start, size,
                        caption, folder, formats, fontsize=11))
    return out


def draw_direction(by_layer: pd.DataFrame, by_rate: pd.DataFrame, folder: Path,
                   formats: list[str]) -> tuple[list[Figure], list[str]]:
    if by_layer.empty and by_rate.empty:
        return [], []
    return _draw_layers(by_layer, folder, formats) + _draw_rates(by_rate, folder, formats), []
