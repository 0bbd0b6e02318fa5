"""The analyzer uses the exact KL(base || post) where results have it: the KL fit recovers a relation built on the
exact figures while the Monte Carlo ones beside them are off it (some negative); results written before the exact
KL fall back to their Monte Carlo figure, marked in the tables, the fit's note, the figure and the report's warnings.
"""

from __future__ import annotations

import pandas as pd
import pytest

from stages.analyzer.kl_values import EXACT, MONTE_CARLO
from tests.analyzer.conftest import analyzer_manifest, invoke
from tests.analyzer.synthetic import TARGET_TASK, _results, _scores, _write_run, base_id, base_value

A, B = 0.5, 0.1  # forgetting = A·KL² + B·KL on the exact KL
# method -> (exact KL or None for an old result, Monte Carlo KL, its standard error)
POINTS = {"GT-SFT": (0.1, -0.02, 0.05), "SF-SFT": (0.2, 0.35, 0.06), "CF-SFT": (0.3, 0.12, 0.05),
          "SELF": (0.4, -0.01, 0.07), "ON-RL": (None, 0.5, 0.08)}


def _forgetting(kl: float) -> float:
    return A * kl * kl + B * kl


def write_kl_study(root) -> None:
    start, size, task = "BASE", "4B", TARGET_TASK["math"]
    bid = base_id(start, size)
    targets = {t: base_value(t, start, size) for t in TARGET_TASK.values()}
    _write_run(root, bid, _results(bid, {"study": "kl", "method": "BASE", "start": start, "model_size": size},
                                   _scores(start, size, 0.0, targets)))
    for method, (exact, mc, se) in POINTS.items():
        rid = f"eval.{method.lower()}.math.s1"
        kl = exact if exact is not None else mc  # the old result's only KL lies on the curve too
        scores = _scores(start, size, -_forgetting(kl), {task: base_value(task, start, size) + 0.1})
        labels = {"study": "kl", "method": method, "domain": "math", "start": start, "model_size": size, "seed": 1,
                  "lr": 1e-5, "engine": "native", "base_run_id": bid}
        extra = {"kl_target": mc, "kl_target_stderr": se, "kl_target_n": 64}
        if exact is not None:
            extra.update(kl_target_exact=exact, kl_target_exact_stderr=se / 10)
        _write_run(root, rid, _results(rid, labels, scores, **extra))


@pytest.fixture(scope="module")
def kl_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kl-study")
    write_kl_study(tmp / "study")
    m = analyzer_manifest(tmp / "m.json", tmp / "out", {"study_dir": str(tmp / "study"), "title": "KL study",
                                                        "figure_formats": ["png"]})
    res = invoke("--manifest", str(m))
    assert res.exit_code == 0, res.output
    return tmp / "out"


def test_the_fit_uses_the_exact_kl(kl_study):
    fit = pd.read_csv(kl_study / "tables" / "kl_fit.csv").iloc[0]
    assert (fit["a"], fit["b"], fit["c"], fit["r2"]) == pytest.approx((A, B, 0.0, 1.0), abs=1e-6)
    assert fit["n"] == 5 and fit["note"] == "1 of 5 points use the Monte Carlo KL (no exact KL in their results)"


def test_tables_carry_both_figures_and_which_one_is_used(kl_study):
    ck = pd.read_csv(kl_study / "tables" / "checkpoints.csv")
    ck = ck[ck["method"] != "BASE"].set_index("method")
    for method, (exact, mc, se) in POINTS.items():
        row = ck.loc[method]
        assert row["kl_target_mc"] == pytest.approx(mc) and row["kl_target_mc_stderr"] == pytest.approx(se)
        if exact is None:
            assert row["kl_estimator"] == MONTE_CARLO and row["kl_target"] == pytest.approx(mc)
            assert row["kl_target_stderr"] == pytest.approx(se)
        else:
            assert row["kl_estimator"] == EXACT and row["kl_target"] == pytest.approx(exact)
            assert row["kl_target_stderr"] == pytest.approx(se / 10)
    runs = pd.read_csv(kl_study / "tables" / "runs.csv")
    assert {"kl_target", "kl_estimator", "kl_target_mc", "kl_target_stderr", "kl_target_mc_stderr"} <= set(runs)
    summary = pd.read_csv(kl_study / "tables" / "summary.csv").set_index("method")
    assert summary.at["GT-SFT", "kl_target"] == pytest.approx(0.1)  # not the Monte Carlo -0.02


def test_report_says_where_the_monte_carlo_kl_stands_in(kl_study, analysed):
    html = (kl_study / "report" / "index.html").read_text()
    assert "1 of 5 trained checkpoints have only the Monte Carlo KL" in html
    assert "Hollow: 1 checkpoint(s) whose results have only the Monte Carlo KL" in html
    # the synthetic study's results predate the exact KL: every point falls back, and the report says so
    old = (analysed / "report" / "index.html").read_text()
    assert "have only the Monte Carlo KL" in old
