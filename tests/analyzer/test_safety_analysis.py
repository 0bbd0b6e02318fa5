"""The safety analyses of phase 2 through the analyzer's CLI, on a synthetic SAFE-start study written through the real
results model and record writer (``tests.analyzer.safety_study``): every number in the new tables is recomputed
here from the study's drawn values, the correlation and its intervals with scipy; the examples page shows the
flipped prompts in the documented order, escaped; a bad block is left out with a note and absent blocks leave no
section; headless Chromium loads every new figure and the examples page cleanly.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from stages.analyzer.safety_correlation import BOOTSTRAP, ranks
from tests.analyzer.conftest import analyzer_manifest, invoke
from tests.analyzer.safety_study import (
    BASE_ATTACKS,
    BASE_CAT,
    BASE_PROJ,
    BASE_SAFETY,
    CAT_SHIFT,
    CATS,
    N_HB,
    NASTY,
    Truth,
    safety_score,
    write_safety_study,
)

NEW_FIGURES = ["safety-correlation", "safety-categories_SAFE_4B", "safety-attacks_SAFE_4B",
               "safety-direction_SAFE_4B", "safety-refusal-rates_SAFE_4B"]


@pytest.fixture(scope="module")
def safety_study(tmp_path_factory) -> tuple[Path, Truth]:
    root = tmp_path_factory.mktemp("safety-study")
    truth = write_safety_study(root / "study")
    m = analyzer_manifest(root / "a.json", root / "out", {"study_dir": str(root / "study"), "title": "Safety <study>",
                                                            "figure_formats": ["png"]})
    res = invoke("--manifest", str(m))
    assert res.exit_code == 0, res.output
    return root / "out", truth


def _table(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / "tables" / f"{name}.csv")


def _trained(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["method"] != "BASE") & (df["lr"] == 1e-5)]


def test_average_ranks_match_scipy():
    x = np.array([3.0, 1.0, 3.0, 2.0, 5.0, 3.0, 1.0])
    assert np.allclose(ranks(x), stats.rankdata(x))
    batch = np.random.default_rng(0).integers(0, 4, size=(5, 9)).astype(float)
    assert np.allclose(ranks(batch), np.vstack([stats.rankdata(r) for r in batch]))


def test_correlation_and_its_intervals_match_scipy(safety_study):
    out, truth = safety_study
    base_score = safety_score(*BASE_SAFETY)
    pts = [(-c.retained, base_score - safety_score(c.asr, c.under), c.asr - BASE_SAFETY[0]) for c in truth.ckpts]
    pts += [(-r, base_score - safety_score(a, u), a - BASE_SAFETY[0]) for r, a, u in truth.others]
    x, y, asr = (np.array(v) for v in zip(*pts))
    corr = _table(out, "safety_forgetting_correlation").set_index(["scope", "safety", "capability"])
    row = corr.loc[("all", "safety_degradation", "forgetting")]
    n = len(x)
    assert row["n"] == n
    pr = stats.pearsonr(x, y)
    ci = pr.confidence_interval(0.95)
    assert row["pearson_r"] == pytest.approx(pr.statistic, abs=1e-9)
    assert row["pearson_p"] == pytest.approx(pr.pvalue, rel=1e-6)
    assert (row["pearson_ci_low"], row["pearson_ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-9)
    sr = stats.spearmanr(x, y)
    assert row["spearman_rho"] == pytest.approx(sr.statistic, abs=1e-9)
    assert row["spearman_p"] == pytest.approx(sr.pvalue, rel=1e-6)
    half = stats.norm.ppf(0.975) * math.sqrt(1 + sr.statistic**2 / 2) / math.sqrt(n - 3)  # Bonett-Wright
    expected = np.tanh(np.arctanh(sr.statistic) + np.array([-half, half]))
    assert (row["spearman_ci_low"], row["spearman_ci_high"]) == pytest.approx(tuple(expected), abs=1e-9)
    boot = stats.bootstrap((x, y), lambda a, b: stats.spearmanr(a, b).statistic, paired=True, vectorized=False,
                           method="percentile", n_resamples=BOOTSTRAP, rng=np.random.default_rng(1))
    assert row["spearman_boot_ci_low"] == pytest.approx(boot.confidence_interval.low, abs=0.12)
    assert row["spearman_boot_ci_high"] == pytest.approx(boot.confidence_interval.high, abs=0.12)
    other = corr.loc[("all", "harmbench_asr_delta", "forgetting")]
    assert other["pearson_r"] == pytest.approx(stats.pearsonr(x, asr).statistic, abs=1e-9)
    assert not any(corr.index.get_level_values("capability") == "sample_forgetting")  # no per-item F: no row


def test_categories_that_break_first(safety_study):
    out, truth = safety_study
    cats = _trained(_table(out, "safety_categories"))
    expected = {}
    for method, cks in truth.by_method().items():
        for cat in CATS:
            change = np.mean([min(1.0, BASE_CAT[cat] + CAT_SHIFT[cat] * c.k) - BASE_CAT[cat] for c in cks])
            expected[(method, cat)] = change
            row = cats[(cats["method"] == method) & (cats["category"] == cat)].iloc[0]
            assert row["asr_change"] == pytest.approx(change, abs=1e-9)
            assert row["asr_base"] == pytest.approx(BASE_CAT[cat], abs=1e-9)
        first = max(CATS, key=lambda c: expected[(method, c)])
        ranked = cats[cats["method"] == method].set_index("category")["rank"]
        assert ranked[first] == 1 and sorted(ranked) == [1, 2, 3, 4]
    order = _table(out, "safety_categories_order")
    means = {cat: np.mean([v for (m, c), v in expected.items() if c == cat]) for cat in CATS}
    assert list(order["category"]) == sorted(CATS, key=lambda c: -means[c])
    assert order["mean_asr_change"].tolist() == pytest.approx(sorted(means.values(), reverse=True), abs=1e-9)


def test_attack_success_rates_per_method(safety_study):
    out, truth = safety_study
    att = _table(out, "safety_attacks")
    for method, cks in truth.by_method().items():
        got = _trained(att[att["method"] == method]).set_index("attack")
        for attack, base in BASE_ATTACKS.items():
            mean = np.mean([c.attacks[attack] for c in cks])
            assert got.at[attack, "asr"] == pytest.approx(mean, abs=1e-9)
            assert got.at[attack, "asr_base"] == pytest.approx(base, abs=1e-9)
            assert got.at[attack, "asr_change"] == pytest.approx(mean - base, abs=1e-9)
            assert got.at[attack, "asr_n"] == len(cks)
        assert got.at["direct", "asr"] == pytest.approx(np.mean([c.asr for c in cks]), abs=1e-9)
    base = att[att["method"] == "BASE"].set_index("attack")
    assert base.at["gcg", "asr"] == pytest.approx(BASE_ATTACKS["gcg"])
    by_cat = _table(out, "safety_attacks_by_category")
    assert set(by_cat["category"]) == set(CATS) and set(by_cat["attack"]) == set(BASE_ATTACKS)


def test_refusal_direction_attenuation_per_layer(safety_study):
    out, truth = safety_study
    layers = _table(out, "safety_refusal_direction")
    rates = _trained(_table(out, "safety_refusal_rates")).set_index("method")
    for method, cks in truth.by_method().items():
        got = _trained(layers[layers["method"] == method]).sort_values("layer")
        assert got["layer"].tolist() == list(range(len(BASE_PROJ)))
        att = np.mean([c.attenuation for c in cks], axis=0)
        assert got["attenuation"].to_numpy() == pytest.approx(att, abs=1e-9)
        assert got["cosine"].to_numpy() == pytest.approx(np.mean([[1 - abs(a) / 2 for a in c.attenuation]
                                                                  for c in cks], axis=0), abs=1e-9)
        for mode in ("none", "ablation", "addition"):
            assert rates.at[method, f"refusal_rate_{mode}"] == pytest.approx(np.mean([c.rates[mode] for c in cks]))
    base = layers[layers["method"] == "BASE"]
    assert (base["attenuation"] == 0).all() and (base["cosine"] == 1).all()


def test_examples_page_shows_flipped_prompts_in_order_and_escaped(safety_study):
    out, truth = safety_study
    flips = _table(out, "safety_verdict_flips")
    hb = flips[flips["task"] == "fllm_harmbench"].set_index("checkpoint")
    by_run = {c.run_id: c for c in truth.ckpts}
    for ck, row in hb.iterrows():
        c = by_run.get(ck)
        if c is not None:
            assert (row["flipped_worse"], row["flipped_better"], row["n_compared"]) == (c.n_flip, 0, N_HB)
    xs = flips[flips["task"] == "fllm_xstest"].set_index("checkpoint")
    assert all(xs.at[c.run_id, "flipped_worse"] == c.xs_flip for c in truth.ckpts)
    # representatives: the lowest seed of each condition; the bad-block PI run (lr 2e-5) flips item 5 to safe
    reps = [min(cks, key=lambda c: c.seed) for cks in truth.by_method().values()]
    worse = {i: sum(c.n_flip > i for c in reps) for i in range(N_HB)}
    flipped = {i: worse[i] + (i == 5) for i in range(N_HB)}
    expected = sorted((i for i in range(N_HB) if flipped[i]), key=lambda i: (-worse[i], -flipped[i], i))
    page = (out / "report" / "safety_examples.html").read_text()
    shown = [int(i) for i in re.findall(r'id="fllm_harmbench-(\d+)"', page)]
    assert shown == expected
    assert NASTY not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "Safety &lt;study&gt;" in page and "<script" not in page
    index = (out / "report" / "index.html").read_text()
    assert '<a href="safety_examples.html">' in index and 'id="table-safety_verdict_flips"' in index


def test_a_bad_block_is_left_out_with_a_note(safety_study):
    out, _ = safety_study
    index = (out / "report" / "index.html").read_text()
    assert "Attacks of eval.safe.4b.math.pi.bad" in index and "version 99" in index
    runs = _table(out, "safety_attacks_runs")
    assert "eval.safe.4b.math.pi.bad" not in set(runs["checkpoint"])


def test_absent_blocks_leave_no_section(analysed):
    """The shared synthetic study has safety scores but no attacks, refusal direction or per-item records."""
    tables, figures = analysed / "tables", analysed / "report" / "figures"
    assert (tables / "safety_forgetting_correlation.csv").is_file()
    for name in ("safety_attacks", "safety_refusal_direction", "safety_refusal_rates", "safety_verdict_flips",
                 "safety_categories"):
        assert not (tables / f"{name}.csv").exists(), name
    assert not list(figures.glob("safety-attacks*")) and not list(figures.glob("safety-direction*"))
    index = (analysed / "report" / "index.html").read_text()
    assert "safety_examples.html" not in index and "Attacks of" not in index


@pytest.mark.chromium
def test_chromium_loads_every_new_figure_and_the_examples_page(safety_study, tmp_path):
    from tests.analyzer.test_chromium import CONSOLE, FLAGS, render

    out, _ = safety_study
    report = out / "report"
    probe = report / "probe.html"  # the report plus a script that logs each figure's decoded size
    script = ('<script>window.addEventListener("load",()=>{for(const f of document.querySelectorAll("figure"))'
              '{const i=f.querySelector("img");console.log("FIG "+f.id+" "+i.naturalWidth+"x"+i.naturalHeight)}})'
              "</script>")
    probe.write_text((report / "index.html").read_text().replace("</body>", script + "</body>"))
    shot = out / "safety-screenshot.png"  # kept beside the report for a person to look at
    console = render(probe, shot, tmp_path / "profile", size="1400,9000")
    sizes = {m.group(1): (int(m.group(2)), int(m.group(3))) for line in console
             if (m := re.search(r'"FIG (\S+) (\d+)x(\d+)"', line))}
    for name in NEW_FIGURES:
        assert sizes.get(name, (0, 0))[0] > 300 and sizes[name][1] > 300, (name, sizes)
    assert [line for line in console if "FIG " not in line] == []
    probe.unlink()
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    red = (r > 150) & (g < 60) & (b < 60)  # category breaks, GCG bars, attenuated layers
    yellow = (r > 180) & (g > 180) & (b < 90)  # the cosine heatmap's top end
    assert red.sum() > 2000 and yellow.sum() > 2000, (red.sum(), yellow.sum())

    cmd = [shutil.which("chromium") or "chromium", *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom",
           (report / "safety_examples.html").resolve().as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and [line for line in p.stderr.splitlines() if CONSOLE.search(line)] == []
    assert "&lt;script&gt;alert" in p.stdout and "<script" not in p.stdout and p.stdout.count('class="item"') >= 2
