"""``<stage> check``: plan-time validate + preflight for many manifests at once, with inputs that upstream runs have
not produced yet treated as pending (their checks listed as deferred), real faults reported per manifest with their
JSON path, exit 2 when any fails, and nothing written anywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def example(name: str) -> dict:
    return json.loads((REPO / "manifests" / "examples" / f"{name}.json").read_text())


def check(stage: str, manifests: list[dict]) -> tuple[int, list[dict], str]:
    script = Path(sys.executable).parent / stage
    p = subprocess.run([str(script), "check", "--manifest", "-", "--json"], input=json.dumps(manifests),
                       capture_output=True, text=True, cwd=REPO, check=False)
    return p.returncode, [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")], p.stderr


def test_pending_upstream_is_deferred_and_faults_are_named(tmp_path, fixtures_dir):
    waiting = example("sft-trainer")
    waiting["run_id"] = "waits-for-data"
    waiting["spec"]["output_dir"] = str(tmp_path / "out-a")
    waiting["spec"]["inputs"]["data"] = {"from": f"{tmp_path}/data.math.gt/out/manifest.json#outputs.sft"}
    no_model = example("sft-trainer")
    no_model["run_id"] = "no-model"
    no_model["spec"]["output_dir"] = str(tmp_path / "out-b")
    no_model["spec"]["inputs"]["model"]["uri"] = str(tmp_path / "missing-model")
    odd_batch = json.loads(json.dumps(waiting))
    odd_batch["run_id"] = "odd-batch"
    odd_batch["spec"]["resources"] = {"gpus_per_node": 0, "nodes": 2}
    odd_batch["spec"]["params"]["global_batch_size"] = 3
    code, rows, err = check("sft-trainer", [waiting, no_model, odd_batch])
    assert code == 2, err
    by_id = {r["run_id"]: r for r in rows}
    assert by_id["waits-for-data"]["ok"] and by_id["waits-for-data"]["deferred"] == ["data <- data.math.gt"]
    assert not by_id["no-model"]["ok"] and "missing-model does not exist" in by_id["no-model"]["problem"]
    assert by_id["no-model"]["problem"].startswith("$.spec.inputs.model")
    # checks that need no data still run while the data is pending (here: the native engine on 2 nodes)
    assert not by_id["odd-batch"]["ok"] and "nodes" in by_id["odd-batch"]["problem"]
    assert not any(tmp_path.glob("out-*")), "check writes nothing"


def test_all_good_exits_0_and_a_foreign_manifest_is_refused(fixtures_dir):
    code, rows, err = check("spin", [example("spin")])
    assert code == 0 and rows[0]["ok"] and rows[0]["deferred"] == [], err
    code, rows, _ = check("spin", [example("collector")])
    assert code == 2 and "for stage 'collector'" in rows[0]["problem"]
