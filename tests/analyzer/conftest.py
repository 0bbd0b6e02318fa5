"""Fixtures of the analyzer tests: the synthetic study written once per session, the analyzer run on it once
(in-process, through the real CLI and lifecycle), and helpers to write analyzer manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from stages.analyzer.cli import main as analyzer_cli
from tests.analyzer.synthetic import write_study


def analyzer_manifest(path: Path, out: Path, params: dict | None = None, inputs: dict | None = None,
                      run_id: str = "analyzer.test") -> Path:
    m = {
        "schema": "forgetting-llms/manifest/v1",
        "stage": "analyzer",
        "run_id": run_id,
        "spec": {"inputs": inputs or {}, "params": params or {}, "output_dir": str(out)},
    }
    path.write_text(json.dumps(m, indent=1))
    return path


def invoke(*args: str):
    return CliRunner().invoke(analyzer_cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    write_study(root)
    return root


@pytest.fixture(scope="session")
def analysed(study, tmp_path_factory) -> Path:
    """The analyzer's output folder for the whole synthetic study."""
    tmp = tmp_path_factory.mktemp("analysis")
    m = analyzer_manifest(tmp / "m.json", tmp / "out", {"study_dir": str(study), "title": "Synthetic study"})
    res = invoke("--manifest", str(m))
    assert res.exit_code == 0, res.output
    return tmp / "out"


@pytest.fixture(scope="session")
def tables(analysed):
    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(analysed / "tables" / f"{name}.csv")

    return read
