"""Bad manifests get a clear error naming the JSON path of the fault, exit code 2, and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stages.sft_trainer.cli import main as sft_cli


@pytest.fixture
def world(tmp_path, tiny_model_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "sft.parquet"
    rows = [{"messages": [{"role": "user", "content": f"What is {i} + {i}?"},
                          {"role": "assistant", "content": f"\\boxed{{{2 * i}}}"}]} for i in range(16)]
    pq.write_table(pa.Table.from_pylist(rows), data)
    return tmp_path, tiny_model_dir, data


def manifest(tmp: Path, model: Path, data: Path, **edits) -> dict:
    m = {
        "schema": "forgetting-llms/manifest/v1",
        "stage": "sft-trainer",
        "run_id": "bad.input.test",
        "spec": {
            "inputs": {
                "model": {"uri": str(model), "kind": "hf_model"},
                "data": {"uri": str(data), "kind": "sft_data"},
            },
            "params": {"epochs": 1, "global_batch_size": 8, "max_length": 256},
            "output_dir": str(tmp / "out"),
        },
    }
    for path, value in edits.items():
        node = m
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        if value is DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return m


DELETE = object()


def run(tmp: Path, doc, raw: str | None = None):
    p = tmp / "m.json"
    p.write_text(raw if raw is not None else json.dumps(doc))
    return CliRunner().invoke(sft_cli, ["validate", "--manifest", str(p)]), CliRunner().invoke(
        sft_cli, ["--manifest", str(p)]
    )


CASES = {
    "unknown key": ({"spec.params.learning_rate": 1e-5}, "$.spec.params.learning_rate", "unknown key"),
    "wrong type": ({"spec.params.epochs": "two"}, "$.spec.params.epochs", "number"),
    "out of bounds": ({"spec.params.global_batch_size": 0}, "$.spec.params.global_batch_size", "greater than"),
    "nested bound": ({"spec.params.optim": {"lr": -1}}, "$.spec.params.optim.lr", "greater than"),
    "missing required input": ({"spec.inputs.model": DELETE}, "$.spec.inputs", "missing required input 'model'"),
    "unknown input": ({"spec.inputs.extra": {"uri": "/x", "kind": "hf_model"}}, "$.spec.inputs.extra", "unknown"),
    "wrong kind": ({"spec.inputs.model.kind": "sft_data"}, "$.spec.inputs.model.kind", "needs hf_model"),
    "unreadable uri": ({"spec.inputs.model.uri": "/nonexistent/model"}, "$.spec.inputs.model", "does not exist"),
    "unset variable": ({"spec.output_dir": "$NO_SUCH_VAR_XYZ/out"}, "$.spec.output_dir", "NO_SUCH_VAR_XYZ"),
    "bad engine": ({"spec.runtime": {"engine": "megatron"}}, "$.spec.runtime.engine", "native, verl"),
    "wrong stage": ({"stage": "collector"}, "$.stage", "for stage 'collector'"),
    "bad run id": ({"run_id": "has space"}, "$.run_id", "pattern"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_manifest(world, case):
    tmp, model, data = world
    edits, path, words = CASES[case]
    v, r = run(tmp, manifest(tmp, model, data, **edits))
    for res in (v, r):
        assert res.exit_code == 2, res.output
        assert path in res.output and words in res.output, res.output
    assert not (tmp / "out").exists()


def test_malformed_json(world):
    tmp, model, data = world
    v, r = run(tmp, None, raw='{"schema": "forgetting-llms/manifest/v1", "stage": ')
    for res in (v, r):
        assert res.exit_code == 2
        assert "malformed JSON" in res.output and "line 1" in res.output
    assert not (tmp / "out").exists()


def test_missing_manifest_file(tmp_path):
    res = CliRunner().invoke(sft_cli, ["--manifest", str(tmp_path / "nope.json")])
    assert res.exit_code == 2 and "no such file" in res.output


def _upstream(tmp: Path, state: str, data: Path) -> Path:
    up = {
        "schema": "forgetting-llms/manifest/v1",
        "stage": "collector",
        "run_id": "up",
        "spec": {"output_dir": str(tmp / "up")},
        "status": {"state": state},
        "outputs": {"sft": {"uri": str(data), "kind": "sft_data", "digest": None}},
    }
    p = tmp / "up.json"
    p.write_text(json.dumps(up))
    return p


def test_upstream_not_succeeded(world):
    tmp, model, data = world
    up = _upstream(tmp, "running", data)
    v, r = run(tmp, manifest(tmp, model, data, **{"spec.inputs.data": {"from": f"{up}#outputs.sft"}}))
    for res in (v, r):
        assert res.exit_code == 2
        assert "$.spec.inputs.data.from" in res.output and "'running', not 'succeeded'" in res.output
    assert not (tmp / "out").exists()


def test_upstream_link_resolves_and_checks_digest(world):
    from stages.core.digest import digest

    tmp, model, data = world
    up = _upstream(tmp, "succeeded", data)
    doc = json.loads(up.read_text())
    doc["outputs"]["sft"]["digest"] = digest(str(data))
    up.write_text(json.dumps(doc))
    m = manifest(tmp, model, data, **{"spec.inputs.data": {"from": f"{up}#outputs.sft"}})
    v, _ = run(tmp, m)
    assert v.exit_code == 0, v.output
    data.write_bytes(b"changed after the upstream run recorded it")
    v, _ = run(tmp, m)
    assert v.exit_code == 2 and "changed since it was recorded" in v.output
    m["spec"]["inputs"]["data"] = {"from": f"{up}#outputs.nothere"}
    v, _ = run(tmp, m)
    assert v.exit_code == 2 and "has no output 'nothere'" in v.output
