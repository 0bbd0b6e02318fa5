"""The analyzer on the smoke study's real outputs (``make smoke`` writes them under ``.runs``, or set
``FLLM_SMOKE_STUDY_DIR``): the report is produced end to end from whatever evaluator runs exist there.

Skips, saying why, until the conductor (issue 10) has run the smoke study on this machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.analyzer.conftest import analyzer_manifest, invoke

REPO = Path(__file__).resolve().parents[2]


def smoke_study_dir() -> Path:
    return Path(os.environ.get("FLLM_SMOKE_STUDY_DIR") or REPO / ".runs")


def evaluator_runs(root: Path) -> list[Path]:
    found = []
    for m in root.rglob("manifest.json") if root.is_dir() else []:
        try:
            doc = json.loads(m.read_text())
        except (OSError, ValueError):
            continue
        state = (doc.get("status") or {}).get("state") if isinstance(doc, dict) else None
        if state == "succeeded" and doc.get("stage") == "evaluator":
            found.append(m)
    return found


def test_report_from_the_smoke_study(tmp_path):
    root = smoke_study_dir()
    runs = evaluator_runs(root)
    if not runs:
        pytest.skip(f"no succeeded evaluator run under {root}: run `make smoke` first (needs the conductor, issue 10)")
    out = tmp_path / "out"
    m = analyzer_manifest(tmp_path / "m.json", out, {"study_dir": str(root), "title": "Smoke study"})
    res = invoke("--manifest", str(m))
    assert res.exit_code == 0, res.output
    record = json.loads((out / "manifest.json").read_text())
    assert record["status"]["state"] == "succeeded"
    assert record["summary"]["results"] == len(runs)
    html = (out / "report" / "index.html").read_text()
    assert "Smoke study" in html and (out / "tables" / "runs.csv").is_file()
