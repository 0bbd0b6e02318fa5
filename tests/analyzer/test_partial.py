"""A partial study still gets a report: inputs linked by manifest, a run whose base is not there yet, unfinished
runs; missing numbers stay missing, figures that cannot be drawn yet are named. Also: a rerun of the same spec is
skipped, and the analyzer runs as its own process without importing torch."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.analyzer.conftest import analyzer_manifest, invoke
from tests.analyzer.synthetic import Cond, _results, _scores, _write_run, base_id, base_value

REPO = Path(__file__).resolve().parents[2]


def _trained(root: Path, rid: str, c: Cond, base: str) -> Path:
    task = {"math": "eval:MATH500", "code": "eval:CodeContest"}[c.domain]
    labels = {"method": c.method, "domain": c.domain, "start": c.start, "model_size": c.size, "seed": 1,
              "lr": c.lr_value, "engine": "native", "base_run_id": base}
    scores = _scores(c.start, c.size, c.retained, {task: base_value(task, c.start, c.size) + c.gain})
    return _write_run(root, rid, _results(rid, labels, scores, kl_target=0.1))


@pytest.fixture(scope="module")
def partial(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("partial")
    b = base_id("BASE", "4B")
    runs = {
        "base": _write_run(root, b, _results(b, {"method": "BASE", "start": "BASE", "model_size": "4B"},
                                             _scores("BASE", "4B", 0.0, {"eval:MATH500": 0.3}))),
        "gt": _trained(root, "gt.math", Cond("BASE", "4B", "GT-SFT", "math", 0.2, -0.08), b),
        "orphan": _trained(root, "rl.code", Cond("BASE", "4B", "ON-RL", "code", 0.1, -0.01), "eval.base.4b.not-yet"),
    }
    _write_run(root, "pi.math", None, state="pending")
    return runs


def _linked(runs: dict[str, Path]) -> dict:
    return {name: {"from": f"{m}#outputs.results"} for name, m in runs.items()}


def test_partial_study_from_linked_manifests(partial, tmp_path):
    out = tmp_path / "out"
    m = analyzer_manifest(tmp_path / "m.json", out, {"figure_formats": ["png"]}, _linked(partial))
    res = invoke("--manifest", str(m))
    assert res.exit_code == 0, res.output
    html = (out / "report" / "index.html").read_text()
    assert (out / "report" / "figures" / "heatmap_BASE_4B.png").is_file()
    assert not list((out / "report" / "figures").glob("*.svg"))  # only the formats asked for
    assert "Not drawn yet" in html and "two or more model sizes" in html and "no SAFE-start" in html
    assert "No base results yet, so deltas missing (1): rl.code" in html
    caps = pd.read_csv(out / "tables" / "capability_changes.csv").set_index("checkpoint")
    assert caps.loc["gt.math", "knowledge"] == pytest.approx(-0.08)
    assert math.isnan(caps.loc["rl.code", "knowledge"])  # its base is not done: missing, not zero
    fit = pd.read_csv(out / "tables" / "kl_fit.csv").iloc[0]
    assert math.isnan(fit["r2"]) and "fewer than 3" in fit["note"]
    runs = pd.read_csv(out / "tables" / "runs.csv").set_index("run_id")
    assert runs.loc["gt.math", "manifest_uri"] == str(partial["gt"])  # provenance: which manifest it came from

    again = invoke("--manifest", str(m))
    assert again.exit_code == 0 and "skipped" in again.output


def test_partial_study_dir_lists_unfinished_runs(partial, tmp_path):
    out = tmp_path / "out"
    study = partial["base"].parent.parent
    m = analyzer_manifest(tmp_path / "m.json", out, {"study_dir": str(study), "figure_formats": ["svg"]})
    res = invoke("--manifest", str(m))
    assert res.exit_code == 0, res.output
    record = json.loads((out / "manifest.json").read_text())
    assert record["summary"]["results"] == 3 and record["summary"]["pending"] == 1
    html = (out / "report" / "index.html").read_text()
    assert "Not finished (1)" in html and "pi.math" in html
    assert 'src="figures/heatmap_BASE_4B.svg"' in html  # SVG shown when it is the only format


def test_runs_as_a_process_without_torch(partial, tmp_path):
    out = tmp_path / "out"
    m = analyzer_manifest(tmp_path / "m.json", out, {"figure_formats": ["png"]}, _linked(partial))
    code = (
        "import sys\n"
        "from stages.analyzer.stage import STAGE\n"
        "from stages.core.lifecycle import execute\n"
        "rc = execute(STAGE, sys.argv[1])\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'lm_eval', 'scipy') if m in sys.modules]\n"
        "print('heavy imports:', heavy)\n"
        "sys.exit(rc or (3 if heavy else 0))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-c", code, str(m)], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "heavy imports: []" in p.stdout
    assert (out / "report" / "index.html").is_file()


def test_validate_imports_nothing_heavy(tmp_path, partial):
    m = analyzer_manifest(tmp_path / "m.json", tmp_path / "out", None, _linked(partial))
    code = (
        "import sys\n"
        "from stages.analyzer.cli import main\n"
        "try:\n"
        "    main(['validate', '--manifest', sys.argv[1]])\n"
        "except SystemExit as e:\n"
        "    loaded = [m for m in ('pandas', 'matplotlib', 'numpy', 'torch') if m in sys.modules]\n"
        "    print('loaded:', loaded, 'exit', e.code)\n"
    )
    p = subprocess.run([sys.executable, "-c", code, str(m)], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                       capture_output=True, text=True, timeout=120)
    assert "loaded: [] exit 0" in p.stdout, p.stdout + p.stderr


def test_a_new_result_in_the_study_dir_reruns_the_analysis(partial, tmp_path):
    """The spec hash covers the results found in study_dir: same manifest, new result -> the work is redone."""
    study = tmp_path / "study"
    shutil.copytree(partial["base"].parent.parent, study)
    out = tmp_path / "out"
    m = analyzer_manifest(tmp_path / "m.json", out, {"study_dir": str(study), "figure_formats": ["png"]})
    assert invoke("--manifest", str(m)).exit_code == 0
    assert "skipped" in invoke("--manifest", str(m)).output
    _trained(study, "gt.code", Cond("BASE", "4B", "GT-SFT", "code", 0.1, -0.03), base_id("BASE", "4B"))
    res = invoke("--manifest", str(m))
    assert res.exit_code == 2 and "--force" in res.output  # a different spec now: the core refuses to overwrite
    res = invoke("--manifest", str(m), "--force")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "manifest.json").read_text())["summary"]["results"] == 4


@pytest.mark.parametrize("case", ["only a base", "only unfinished runs", "no labels and no base"])
def test_report_when_nothing_can_be_compared_yet(tmp_path, case):
    study, b = tmp_path / "study", base_id("BASE", "4B")
    if case == "only a base":
        _write_run(study, b, _results(b, {"method": "BASE", "start": "BASE", "model_size": "4B"},
                                      _scores("BASE", "4B", 0.0, {"eval:MATH500": 0.3})))
    elif case == "only unfinished runs":
        _write_run(study, "waiting", None, state="running")
    else:
        _write_run(study, "bare", _results("bare", {}, _scores("BASE", "4B", -0.1, {"eval:MATH500": 0.5})))
    out = tmp_path / "out"
    m = analyzer_manifest(tmp_path / "m.json", out, {"study_dir": str(study), "figure_formats": ["png"]})
    res = invoke("--manifest", str(m))
    assert res.exit_code == 0, res.output
    html = (out / "report" / "index.html").read_text()
    assert "Forgetting heatmap: no trained checkpoint with a base to compare to yet." in html
    assert (out / "tables" / "summary_by_condition.csv").is_file()
