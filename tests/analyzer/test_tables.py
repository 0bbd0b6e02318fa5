"""The analyzer on a synthetic study of known structure: the tables hold the numbers the structure implies, the
Pareto fronts hold exactly the expected points, and missing runs stay missing."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from tests.analyzer.synthetic import (
    CONDITIONS,
    EXPECTED_SAFETY_FRONTS,
    EXPECTED_TARGET_FRONTS,
    LABELS_FROM_TRAINING,
    OTHER_ITEMS,
    OTHER_PROTOCOL,
    PENDING,
    SEED_F_OFFSET,
    SEED_TARGET_OFFSET,
    SPLIT_SUITES,
    T_975_DF2,
    TRAINING_FACTS,
    base_id,
    retained_of,
    run_id,
)

ABS = 1e-9


def _cond(df: pd.DataFrame, start: str, size: str, method: str, domain: str, lr: float | None = None) -> pd.DataFrame:
    sel = (df["start"] == start) & (df["model_size"] == size) & (df["method"] == method) & (df["domain"] == domain)
    if lr is not None:
        sel &= df["lr"].sub(lr).abs() < 1e-15
    return df[sel]


def _lr_of(c) -> float:
    return TRAINING_FACTS["lr"] if (c.start, c.size, c.method, c.domain) == LABELS_FROM_TRAINING else c.lr_value


def test_summary_by_condition_holds_the_constructed_numbers(tables):
    df = tables("summary_by_condition")
    assert len(df) == len(CONDITIONS)
    for c in CONDITIONS:
        row = _cond(df, c.start, c.size, c.method, c.domain, _lr_of(c))
        assert len(row) == 1, c
        row = row.iloc[0]
        assert row["n_runs"] == len(c.seeds)
        assert row["target_gain"] == pytest.approx(c.gain, abs=ABS)
        assert row["retained_change"] == pytest.approx(c.retained, abs=ABS)
        assert row["forgetting"] == pytest.approx(-c.retained, abs=ABS)
        assert row["kl_target"] == pytest.approx(-2 * c.retained, abs=ABS)
        if c.safety:
            assert row["safety_score"] == pytest.approx(1 - (c.safety[0] + c.safety[1]) / 2, abs=ABS)
            assert row["safety_change"] == pytest.approx(row["safety_score"] - 0.925, abs=ABS)
        else:
            assert math.isnan(row["safety_score"])  # no safety results: missing, never 0


def test_seed_mean_and_t_interval(tables):
    row = _cond(tables("summary_by_condition"), "BASE", "4B", "ON-RL", "math").iloc[0]
    half = T_975_DF2 * SEED_TARGET_OFFSET / math.sqrt(3)  # gains 0.15, 0.17, 0.19: sd = 0.02
    assert row["target_gain_n"] == 3
    assert row["target_gain_sd"] == pytest.approx(SEED_TARGET_OFFSET, abs=ABS)
    assert row["target_gain_ci_low"] == pytest.approx(0.17 - half, abs=1e-9)
    assert row["target_gain_ci_high"] == pytest.approx(0.17 + half, abs=1e-9)
    f = _cond(tables("forgetting_by_condition"), "BASE", "4B", "ON-RL", "math").iloc[0]
    assert f["forgetting"] == pytest.approx(0.05, abs=ABS)
    half_f = T_975_DF2 * SEED_F_OFFSET / math.sqrt(3)
    assert f["forgetting_ci_high"] - f["forgetting"] == pytest.approx(half_f, abs=1e-9)
    single = _cond(tables("summary_by_condition"), "BASE", "4B", "PI", "math").iloc[0]
    assert single["target_gain_n"] == 1 and math.isnan(single["target_gain_ci_low"])  # one seed: no interval


def test_capabilities_use_primary_metrics_and_orient_lower_is_better(tables):
    caps = tables("capability_changes")
    r = retained_of("CF-SFT", "math")
    row = caps[caps["checkpoint"] == run_id(next(c for c in CONDITIONS if c.method == "CF-SFT"), 1)].iloc[0]
    for cap in ("knowledge", "reasoning", "commonsense", "instruction_following"):
        assert row[cap] == pytest.approx(r, abs=ABS)  # arc's second metric (0.99 both sides) is not averaged in
    assert row["calibration"] == pytest.approx(r, abs=ABS)  # ECE rose by -r: lower is better, so change = r
    scores = tables("scores")
    ece = scores[(scores["run_id"] == row["checkpoint"]) & (scores["metric"] == "ece")].iloc[0]
    assert ece["delta"] == pytest.approx(-r, abs=ABS) and ece["change"] == pytest.approx(r, abs=ABS)
    assert ece["base_run"] == base_id("BASE", "4B")
    absolute = tables("capability_scores")
    base = absolute[absolute["checkpoint"] == base_id("BASE", "4B")].iloc[0]
    assert base["knowledge"] == pytest.approx(0.60) and base["reasoning"] == pytest.approx(0.50)


def _front(df: pd.DataFrame) -> dict[tuple, set]:
    fronts: dict[tuple, set] = {}
    for r in df.itertuples():
        key = (r.start, r.model_size, r.domain)
        fronts.setdefault(key, set())
        if r.on_front:
            fronts[key].add((r.method, float(f"{r.lr:.3g}")))
    return fronts


def test_pareto_fronts_are_exactly_the_expected_points(tables):
    assert _front(tables("pareto_target")) == EXPECTED_TARGET_FRONTS
    assert _front(tables("pareto_safety")) == EXPECTED_SAFETY_FRONTS


def test_kl_fit_recovers_the_constructed_relation(tables):
    fit = tables("kl_fit").iloc[0]
    assert fit["n"] == sum(len(c.seeds) for c in CONDITIONS)
    assert fit["r2"] == pytest.approx(1.0, abs=1e-9)
    assert fit["b"] == pytest.approx(0.5, abs=1e-6) and fit["a"] == pytest.approx(0.0, abs=1e-6)


def test_policy_and_safety_deltas(tables):
    c = next(c for c in CONDITIONS if (c.start, c.method) == ("SAFE", "GT-SFT"))
    pol = tables("policy").set_index("checkpoint").loc[run_id(c, 1)]
    assert pol["self_bleu_delta"] == pytest.approx(-c.retained, abs=ABS)
    assert pol["mean_length_delta"] == pytest.approx(1000 * c.gain, abs=1e-6)
    saf = tables("safety").set_index("checkpoint")
    assert saf.loc[run_id(c, 1), "harmbench_asr_delta"] == pytest.approx(0.40 - 0.10, abs=ABS)
    assert saf.loc[base_id("SAFE", "4B"), "safety_score"] == pytest.approx(0.925, abs=ABS)


def test_labels_from_training_manifest_and_base_by_start_and_size(tables):
    runs = tables("runs").set_index("run_id")
    c = next(c for c in CONDITIONS if (c.start, c.size, c.method, c.domain) == LABELS_FROM_TRAINING)
    row = runs.loc[run_id(c, 1)]
    assert row["method"] == "PI" and row["seed"] == TRAINING_FACTS["seed"]
    assert row["lr"] == pytest.approx(TRAINING_FACTS["lr"]) and row["engine"] == TRAINING_FACTS["engine"]
    self_code = next(c for c in CONDITIONS if (c.method, c.domain) == ("SELF", "code"))
    assert runs.loc[run_id(self_code, 1), "matched_base"] == base_id("BASE", "4B")
    assert "train.base.4b.math.gt-sft" not in runs.index  # other stages' manifests are ignored


def test_missing_runs_stay_missing(analysed, tables):
    runs = tables("runs").set_index("run_id")
    for rid, state, labels in PENDING:
        assert runs.loc[rid, "state"] == state and runs.loc[rid, "method"] == labels["method"]
    caps = tables("capability_changes_by_condition")
    assert _cond(caps, "BASE", "4B", "PI", "code").empty  # running: no row, so no number anywhere
    assert _cond(caps, "BASE", "4B", "SF-SFT", "code").empty
    csv_line = (analysed / "tables" / "summary_by_condition.csv").read_text().splitlines()[1]
    assert ",," in csv_line  # BASE start has no safety: empty cells, not zeros
    md = (analysed / "tables" / "summary_by_condition.md").read_text()
    assert "—" in md
    record = json.loads((analysed / "manifest.json").read_text())
    assert record["status"]["state"] == "succeeded"
    bases = {(c.start, c.size) for c in CONDITIONS}
    assert record["summary"]["results"] == len(bases) + sum(len(c.seeds) for c in CONDITIONS) + 1  # one split
    assert record["summary"]["pending"] == len(PENDING)


def test_results_of_one_model_split_by_suite_are_one_checkpoint(tables):
    c = next(c for c in CONDITIONS if (c.start, c.size, c.method, c.domain) == SPLIT_SUITES)
    ck = tables("checkpoints").set_index("checkpoint").loc[run_id(c, 1)]
    assert ck["results"] == f"{run_id(c, 1)},{run_id(c, 1)}.target"
    assert ck["kl_target"] == pytest.approx(-2 * c.retained)  # from the target document
    row = tables("summary").set_index("checkpoint").loc[run_id(c, 1)]  # gain and retention on one row
    assert row["target_gain"] == pytest.approx(c.gain) and row["retained_change"] == pytest.approx(c.retained)
    assert _cond(tables("summary_by_condition"), *SPLIT_SUITES).iloc[0]["n_runs"] == 1  # not two seeds


def test_unfair_comparisons_are_flagged(analysed, tables):
    other = next(c for c in CONDITIONS if (c.start, c.size, c.method, c.domain) == OTHER_ITEMS)
    scores = tables("scores")
    flags = scores[(scores["task"] == "mmlu")].set_index("run_id")["same_items"]
    assert flags.loc[run_id(other, 1)] == False
    assert flags.drop(run_id(other, 1)).dropna().all()
    proto = next(c for c in CONDITIONS if (c.start, c.size, c.method, c.domain) == OTHER_PROTOCOL)
    runs = tables("runs").set_index("run_id")
    assert runs.loc[run_id(proto, 1), "protocol_differs"] == "num_fewshot"
    assert runs["protocol_differs"].fillna("").astype(str).str.len().gt(0).sum() == 1
    html = (analysed / "report" / "index.html").read_text()
    assert f"{run_id(proto, 1)} (num_fewshot)" in html and f"{run_id(other, 1)}:mmlu" in html


def test_heatmap_layout_lists_planned_but_unfinished_methods(tables):
    from stages.analyzer.figures.heatmap import layout

    runs = tables("runs")
    _, domains, rows = layout(tables("capability_changes_by_condition"), runs[runs["state"] != "succeeded"])
    assert domains == ["math", "code", "qa"]
    assert rows[("SAFE", "4B")] == ["GT-SFT lr=1e-05", "SF-SFT", "SELF", "ON-RL", "PI lr=1e-06"]  # SELF: failed run
    assert rows[("BASE", "1.7B")] == ["GT-SFT lr=1e-05", "ON-RL"]
