"""``study rehearse manifests/studies/phase1.yaml``, end to end on CPU: every run of the DAG succeeds with tiny
stand-ins, every replacement is recorded, and the report renders in headless Chromium with every method x domain cell
filled, the math slice carrying seed intervals and the base's noise flip rate.

One test, one rehearsal (about 13 minutes on 2 cores): the study's real collector, sft-trainer (verl on CPU, as the
study asks), grpo-trainer, spin, pi-distill, evaluator and analyzer processes, started by the conductor.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
METHODS = ["GT-SFT", "SF-SFT", "CF-SFT", "SELF", "ON-RL", "PI"]
DOMAINS = ["math", "code", "qa"]

pytestmark = [pytest.mark.slow, pytest.mark.rehearsal, pytest.mark.timeout(3600)]


def records(study_dir: Path) -> dict[str, dict]:
    out = {}
    shared = study_dir.parent / "shared"  # collections and untrained evaluations (tests/study/test_shared_runs.py)
    for rec in [*study_dir.glob("*/out/manifest.json"), *shared.glob("*/out/manifest.json")]:
        doc = json.loads(rec.read_text())
        out[doc["run_id"]] = doc
    return out


def test_phase1_rehearses_end_to_end(tmp_path):
    root = tmp_path / "rehearsal"
    study = str(REPO / "manifests" / "studies" / "phase1.yaml")
    proc = subprocess.run([str(Path(sys.executable).parent / "study"), "rehearse", study, "--root", str(root),
                           "-j", "2"], cwd=REPO, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "engines.grpo-trainer: verl -> native" in out and "engines.collector: vllm -> hf" in out
    assert "all 79 planned manifests pass" in out

    study_dir = root / "phase1"
    recs = records(study_dir)
    planned = json.loads((study_dir / "rehearsal.json").read_text())
    assert planned["replaced"]["engines.evaluator"].startswith("vllm -> hf")
    assert len(recs) == 79 and all(r["status"]["state"] == "succeeded" for r in recs.values()), \
        {k: r["status"]["message"] for k, r in recs.items() if r["status"]["state"] != "succeeded"}
    # as written where a CPU can: verl for SFT, the study's learning rates, seeds and thinking; replaced otherwise
    sft = recs["qwen3-4b.base.code.gt-sft.s1"]
    assert sft["provenance"]["engine"] == "verl" and sft["spec"]["params"]["optim"]["lr"] == 5.0e-5
    grpo = recs["qwen3-4b.base.qa.on-rl.s1"]
    assert grpo["provenance"]["engine"] == "native" and grpo["spec"]["params"]["group_size"] == 8
    assert "engines.grpo-trainer: verl -> native" in grpo["notes"]
    assert all(r["notes"].startswith("Rehearsal of study phase1") for r in recs.values())
    assert {recs[f"qwen3-4b.base.math.pi.s{s}"]["spec"]["runtime"]["seed"] for s in (1, 2, 3)} == {1, 2, 3}

    report = study_dir / "report" / "out" / "report" / "index.html"
    assert f"report: {report}" in out
    tables = study_dir / "report" / "out" / "tables"
    changes = pd.read_csv(tables / "capability_changes_by_condition.csv")
    trained = changes[changes["method"].isin(METHODS)]
    for method in METHODS:
        for domain in DOMAINS:
            cell = trained[(trained["method"] == method) & (trained["domain"] == domain)]
            assert not cell.empty and cell["change"].notna().any(), (method, domain)
    math_rows = trained[trained["domain"] == "math"]
    assert (math_rows["n_runs"] == 3).all() and math_rows["change_ci_low"].notna().all()  # three seeds: intervals
    assert (trained[trained["domain"] != "math"]["n_runs"] == 1).all()
    forgetting = pd.read_csv(tables / "forgetting.csv")
    assert forgetting["noise_flip_rate"].notna().any()  # the base's second evaluation measured the noise

    if shutil.which("chromium") is None:
        pytest.fail("chromium is not installed (make system)")
    from tests.analyzer.test_chromium import render

    shot = tmp_path / "report.png"
    console = render(report, shot, tmp_path / "profile")
    assert console == [], console  # no broken image or script on the page
    html = report.read_text()
    heatmap = report.parent / "figures" / "heatmap_BASE_4B.png"
    assert "figures/heatmap_BASE_4B.png" in html and heatmap.stat().st_size > 20_000
    # the tiny stand-ins barely move in two steps at the study's learning rates: the cells hold numbers near zero,
    # which is what a rehearsal can show (plumbing, not effects)
