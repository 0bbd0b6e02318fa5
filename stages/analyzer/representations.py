"""The representations suite's numbers as frames and tables: CKA per text set and layer, probe accuracy per layer,
weight-delta metrics per module (mean over layers) and per layer (mean over modules), each seed-aggregated per
condition (mean and t interval, like every other by-condition table).

The evaluator writes them under ``extensions.representations`` of ``results.json`` (version 1: lists of rows
``cka``, ``probes`` and ``weights``; see ``stages.evaluator.suites.representations``). ``results.json`` validates
without looking inside extensions, so this module reads the block defensively: a block of another version, or rows
that are not what version 1 writes, are left out with a note naming the results file, never guessed at.
Probe rows of the base's own evaluation (method BASE, no base model) carry only ``post`` and ``control``: what the
base encodes, shown as the "before" curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from stages.analyzer.analysis import Analysis, with_labels
from stages.analyzer.frames import CONDITION
from stages.analyzer.gather import Gathered
from stages.analyzer.order import sort_frame
from stages.analyzer.stats import aggregate
from stages.analyzer.tables import Table

NAME, VERSION = "representations", 1
CKA_COLS = ["linear", "debiased"]
PROBE_COLS = ["base", "transfer", "post", "control", "agreement"]
WEIGHT_COLS = ["rel_fro", "fro", "rel_spectral", "stable_rank", "stable_rank_ratio", "effective_rank",
               "effective_rank_ratio", "energy_top_k", "overlap_left", "overlap_right", "overlap_left_chance",
               "overlap_right_chance", "max_rank"]
MODULE_ORDER = ["embed_tokens", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "lm_head"]
KEYS = {"cka": (["set", "layer"], CKA_COLS), "probes": (["layer"], PROBE_COLS),
        "weights": (["name", "layer", "module"], WEIGHT_COLS)}


@dataclass
class RepFrames:
    """Per-result rows of each kind (with ``run_id``), and notes on blocks left out."""

    cka: pd.DataFrame
    probes: pd.DataFrame
    weights: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _rows(block: dict[str, Any], kind: str, run_id: str) -> list[dict[str, Any]]:
    keys, cols = KEYS[kind]
    rows = block.get(kind)
    if not isinstance(rows, list) or not all(isinstance(r, dict) and all(k in r for k in keys) for r in rows):
        raise ValueError(f"'{kind}' is not a list of rows with {', '.join(keys)}")
    out = [{"run_id": run_id, **{k: r[k] for k in keys}, **{c: _number(r.get(c)) for c in cols}} for r in rows]
    if kind == "weights":  # stable rank over the maximum, to compare modules of different shapes
        for row in out:
            row["stable_rank_ratio"] = row["stable_rank"] / row["max_rank"] if row["max_rank"] > 0 else float("nan")
    return out


def _number(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan")


def representation_frames(g: Gathered) -> RepFrames:
    found: dict[str, list[dict[str, Any]]] = {k: [] for k in KEYS}
    notes = []
    for r in g.records:
        block = r.results.extensions.get(NAME)
        if block is None:
            continue
        try:
            if not isinstance(block, dict) or block.get("version") != VERSION:
                raise ValueError(f"version {block.get('version') if isinstance(block, dict) else '?'}, "
                                 f"this analyzer reads version {VERSION}")
            rows = {k: _rows(block, k, r.run_id) for k in KEYS}
        except ValueError as e:
            notes.append(f"Representations of {r.run_id} ({r.source.results_uri}) left out: {e}.")
            continue
        for k, v in rows.items():
            found[k] += v
    frames = {k: pd.DataFrame(v, columns=["run_id", *KEYS[k][0], *KEYS[k][1]]) for k, v in found.items()}
    frames["weights"]["layer"] = frames["weights"]["layer"].astype("Int64")
    return RepFrames(frames["cka"], frames["probes"], frames["weights"], notes)


def _per_checkpoint(df: pd.DataFrame, a: Analysis) -> pd.DataFrame:
    """Rows with the checkpoint of their result and its labels (a checkpoint evaluated twice: the first result)."""
    runs = a.runs[["run_id", "checkpoint"]]
    merged = runs.merge(df.astype({"run_id": object}), on="run_id").sort_values("run_id")
    first = merged.groupby("checkpoint")["run_id"].transform("first")
    return with_labels(merged[merged["run_id"] == first].drop(columns=["run_id"]), a.checkpoints)


def module_order(modules: list[str]) -> list[str]:
    return [m for m in MODULE_ORDER if m in modules] + sorted(m for m in modules if m not in MODULE_ORDER)


@dataclass
class RepTables:
    cka: pd.DataFrame  # CONDITION + set, layer
    probes: pd.DataFrame  # CONDITION + layer
    weights_by_module: pd.DataFrame  # CONDITION + module (mean over layers)
    weights_by_layer: pd.DataFrame  # CONDITION + layer (mean over modules of the decoder blocks)
    notes: list[str]


def aggregate_representations(g: Gathered, a: Analysis, confidence: float) -> RepTables:
    f = representation_frames(g)
    cka, probes, w = (_per_checkpoint(df, a) for df in (f.cka, f.probes, f.weights))
    by_module = w.groupby(["checkpoint", "module"], as_index=False)[WEIGHT_COLS].mean()
    by_layer = w[w["layer"].notna()].groupby(["checkpoint", "layer"], as_index=False)[WEIGHT_COLS].mean()

    def agg(df: pd.DataFrame, keys: list[str], cols: list[str]) -> pd.DataFrame:
        labelled = df if "method" in df.columns else with_labels(df, a.checkpoints)
        return sort_frame(aggregate(labelled, CONDITION + keys, cols, confidence))

    return RepTables(agg(cka, ["set", "layer"], CKA_COLS), agg(probes, ["layer"], PROBE_COLS),
                     agg(by_module, ["module"], WEIGHT_COLS), agg(by_layer, ["layer"], WEIGHT_COLS), f.notes)


def representation_tables(t: RepTables) -> list[Table]:
    return [
        Table("representations_cka", "CKA between base and post-trained residual activations per text set and layer "
              "(linear and debiased), seeds aggregated", t.cka),
        Table("representations_probes", "True/false probe accuracy per layer: base probe on base (base), on the "
              "post-trained model (transfer), retrained (post), shuffled-label control; seeds aggregated", t.probes),
        Table("representations_weights", "Weight delta per module (mean over layers): norms, ranks, top-k energy, "
              "overlap with the base weight's top-k subspaces; seeds aggregated", t.weights_by_module),
        Table("representations_weights_by_layer", "Weight delta per layer (mean over the block's modules), seeds "
              "aggregated", t.weights_by_layer),
    ]
