"""The example manifest (manifests/examples/spin.json: the tiny Qwen3 on 32 real GSM8K prompts) runs end to end
from the repository root, as its notes say; only its output folder is moved to a temporary one."""

from __future__ import annotations

import json

import pytest

from tests.spin.conftest import REPO, jsonl, record_of, run_proc


@pytest.mark.slow
def test_example_manifest_runs(tmp_path, fixtures_dir):
    m = json.loads((REPO / "manifests" / "examples" / "spin.json").read_text())
    m["spec"]["output_dir"] = str(tmp_path / "out")
    path = tmp_path / "spin.json"
    path.write_text(json.dumps(m))
    res = run_proc(path, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    rec = record_of(tmp_path / "out")
    assert rec["status"]["state"] == "succeeded"
    assert rec["summary"]["prompts_kept"] == 32 and rec["summary"]["iterations"] == 2
    # keep_previous_iteration is false in the example: iteration 1 trains on its own 32 pairs only
    rows = jsonl(tmp_path / "out" / "pairs" / "iter-1.reference.jsonl")
    assert len(rows) == 32 and {r["source_iteration"] for r in rows} == {1}
