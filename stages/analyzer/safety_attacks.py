"""Attack success rates per method: GCG and AutoDAN on the study's selected checkpoints, from the evaluator's
``extensions["attacks"]`` block (version 1: ``methods`` -> {attack: {asr, n, by_category, steps_run, gpu_seconds}},
``judge``), beside the direct-request HarmBench ASR of the same checkpoint.

Per checkpoint × attack: the ASR, its base's ASR on the same attack and the change; per condition (seeds
aggregated, mean and t interval). Per category: the attack's ASR by semantic category. A study that attacked nothing
has no block anywhere: the section is simply not there. The figure, one per start and size, shows the ASR of each
condition (the base included) per attack, with "direct" (plain HarmBench prompts) as the reference bar.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stages.analyzer.analysis import Analysis, with_labels
from stages.analyzer.figures.style import Figure, new_figure
from stages.analyzer.gather import Gathered
from stages.analyzer.order import sort_frame
from stages.analyzer.safety_common import base_checkpoints, emit, label_order, labelled_rows, number, panels
from stages.analyzer.safety_common import by_condition as by_condition_of
from stages.analyzer.safety_common import per_checkpoint, rate_axes, read_blocks
from stages.analyzer.tables import Table

NAME, VERSION = "attacks", 1
DIRECT = "direct"
VALUES = ["asr", "asr_base", "asr_change", "n", "steps_run", "gpu_seconds"]
ATTACK_COLOURS = {DIRECT: "#9e9e9e", "gcg": "#d62728", "autodan": "#1f77b4"}


def _check(block: dict[str, Any]) -> None:
    methods = block.get("methods")
    if not isinstance(methods, dict) or not all(isinstance(v, dict) for v in methods.values()):
        raise ValueError("'methods' is not a mapping of attack -> numbers")
    for attack, m in methods.items():
        if not isinstance(m.get("by_category", {}), dict):
            raise ValueError(f"methods.{attack}.by_category is not a mapping")


def attack_frames(g: Gathered, a: Analysis) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(per checkpoint × attack, per checkpoint × attack × category, notes); the direct-request ASR rides along as
    the attack ``direct`` for checkpoints that were attacked."""
    blocks, notes = read_blocks(g, NAME, VERSION, "Attacks", _check)
    by_ck = per_checkpoint(blocks, a)
    base_of = base_checkpoints(a)
    direct = dict(zip(a.safety["checkpoint"], a.safety["harmbench_asr"].astype(float))) if len(a.safety) else {}

    def asr(ck: str | None, attack: str) -> float:
        if ck is None:
            return math.nan
        if attack == DIRECT:
            return float(direct.get(ck, math.nan))
        return number(((by_ck.get(ck) or {}).get("methods") or {}).get(attack, {}).get("asr"))

    rows, cats = [], []
    for ck, block in sorted(by_ck.items()):
        for attack, m in [(DIRECT, {}), *sorted(block["methods"].items())]:
            post, base = asr(ck, attack), asr(base_of.get(ck), attack)
            rows.append({"checkpoint": ck, "attack": attack, "judge": block.get("judge") if attack != DIRECT else None,
                         "asr": post, "asr_base": base, "asr_change": post - base,
                         **{k: number(m.get(k)) for k in ("n", "steps_run", "gpu_seconds")}})
            for cat, v in sorted((m.get("by_category") or {}).items()):
                cats.append({"checkpoint": ck, "attack": attack, "category": str(cat), "asr": number(v)})
    return (pd.DataFrame(rows, columns=["checkpoint", "attack", "judge", *VALUES]),
            pd.DataFrame(cats, columns=["checkpoint", "attack", "category", "asr"]), notes)


def attack_tables(g: Gathered, a: Analysis, confidence: float) -> tuple[list[Table], pd.DataFrame, list[str]]:
    """The tables (none when no result has the block), the per-condition frame the figure draws, and notes."""
    per_ck, cats, notes = attack_frames(g, a)
    if per_ck.empty:
        return [], per_ck, notes

    by_condition = by_condition_of(per_ck, a, ["attack"], ["asr", "asr_base", "asr_change", "steps_run",
                                                           "gpu_seconds"], confidence)
    tables = [
        Table("safety_attacks", "Attack success rate per attack and condition (seeds aggregated), its base's and "
              "the change; 'direct' = plain HarmBench prompts", by_condition),
        Table("safety_attacks_runs", "Attack success rate per attacked checkpoint: judge, behaviours, steps, "
              "GPU-seconds", sort_frame(with_labels(per_ck.astype({"checkpoint": object}), a.checkpoints))),
        Table("safety_attacks_by_category", "Attack success rate per HarmBench semantic category (seeds aggregated)",
              by_condition_of(cats, a, ["attack", "category"], ["asr"], confidence)),
    ]
    return tables, by_condition, notes


def draw_attacks(by_condition: pd.DataFrame, folder: Path, formats: list[str]) -> tuple[list[Figure], list[str]]:
    out = []
    if by_condition.empty:
        return out, []
    for (start, size), sub in panels(by_condition):
        if sub["asr"].notna().sum() == 0:
            continue
        sub = labelled_rows(sub)
        rows = label_order(sub)
        attacks = [DIRECT] + sorted(set(sub["attack"]) - {DIRECT})
        width = 0.8 / len(attacks)
        fig = new_figure(max(0.55 * len(rows) * len(attacks) + 2.5, 6.0), 4.4)
        ax = fig.subplots()
        for k, attack in enumerate(attacks):
            part = sub[sub["attack"] == attack].set_index("label")
            ys = np.array([float(part["asr"].get(r, math.nan)) for r in rows])
            lo = np.array([float(part["asr_ci_low"].get(r, math.nan)) for r in rows])
            hi = np.array([float(part["asr_ci_high"].get(r, math.nan)) for r in rows])
            xs = np.arange(len(rows)) + (k - (len(attacks) - 1) / 2) * width
            ax.bar(xs, np.nan_to_num(ys), width, color=ATTACK_COLOURS.get(attack, "#ff7f0e"), edgecolor="black",
                   linewidth=0.4, label=attack)
            err = np.isfinite(lo) & np.isfinite(hi)
            if err.any():
                lo, hi = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)  # a rate's interval stays within [0, 1]
                ax.errorbar(xs[err], ys[err], yerr=[ys[err] - lo[err], hi[err] - ys[err]], fmt="none", ecolor="black",
                            elinewidth=0.8, capsize=2)
            for x, y in zip(xs, ys):
                if not math.isfinite(y):
                    ax.text(x, 0.01, "missing", rotation=90, ha="center", va="bottom", fontsize=6, color="#777777")
        rate_axes(ax, rows, "attack success rate", "attack")
        caption = ("Share of the attacked HarmBench behaviours whose final completion the judge counted as harmful, "
                   "per attack and condition (seed mean, t interval bars); grey = the same checkpoints' direct "
                   "requests. Base and judge per checkpoint in the table safety_attacks_runs.")
        out.append(emit(fig, "safety-attacks", "Attack success rates", start, size, caption, folder, formats))
    return out, []
