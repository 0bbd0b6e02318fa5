"""The snapshot command's layout and manifest logic, on local data (the download itself needs internet)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from stages.envs import ENVS, open_env
from stages.envs.snapshot import (
    MANIFEST,
    check_layout,
    main,
    plan_datasets,
    snapshot_datasets,
    snapshot_models,
    write_manifest,
)

pytestmark = pytest.mark.timeout(120)  # every test here is bounded


def _local_hub(fixture_datasets: dict[str, Path]):
    """A stand-in for the Hub: GEM dataset name -> its splits, read from the fixture folders."""
    import datasets
    import pyarrow.parquet as pq

    calls = []

    def load(name: str, revision: str | None):
        calls.append((name, revision))
        folder = next(fixture_datasets[e] for e, s in ENVS.items() if s.hf_dataset == name)
        splits = {p.stem: datasets.Dataset(pq.read_table(p)) for p in sorted(folder.glob("*.parquet"))}
        return splits, revision or "0123abcd"

    return load, calls


def test_plan_groups_env_ids_by_dataset():
    plan = plan_datasets(ENVS)
    assert len(plan) == 5 and plan["axon-rl/CodeContest"]["splits_needed"] == ["train", "test"]
    assert plan["axon-rl/search-eval"]["folder"] == "search-eval"


def test_snapshot_layout_is_what_the_adapter_reads(fixture_datasets, tmp_path):
    load, calls = _local_hub(fixture_datasets)
    dest = tmp_path / "snap"
    entries = snapshot_datasets(dest, list(ENVS), load, {"axon-rl/GSM-8k": "feedbeef"})
    assert ("axon-rl/GSM-8k", "feedbeef") in calls and len(calls) == 5

    def fake_download(repo_id: str, revision: str | None, folder: Path) -> str:
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"model_type": "qwen3"}))
        return revision or "cafe"

    models = snapshot_models(dest, ["Qwen/Qwen3-4B-Base@abc"], fake_download)
    manifest = json.loads(write_manifest(dest, entries, models).read_text())
    assert manifest["models"][0]["folder"] == "models/Qwen3-4B-Base" and manifest["models"][0]["revision"] == "abc"
    assert set(manifest["models"][0]["files"]) == {"config.json"}
    gsm = next(d for d in manifest["datasets"] if d["name"] == "axon-rl/GSM-8k")
    assert gsm["revision"] == "feedbeef" and set(gsm["splits"]) == {"train", "test"}
    assert len(gsm["splits"]["train"]["sha256"]) == 64 and gsm["splits"]["train"]["rows"] == 40
    rows = check_layout(dest, list(ENVS))
    assert rows == {e: len(open_env(e, fixture_datasets[e])) for e in ENVS}
    result = CliRunner().invoke(main, ["--dest", str(dest), "--check"])
    assert result.exit_code == 0 and "eval:MATH500: 40 rows" in result.output
    (dest / "datasets" / "gsm-8k" / "test.parquet").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="differs from"):
        check_layout(dest, ["eval:MATH500"])


def test_missing_split_and_bad_options_are_clear_errors(fixture_datasets, tmp_path):
    load, _ = _local_hub(fixture_datasets)

    def without_test_split(name, revision):
        splits, rev = load(name, revision)
        return {k: v for k, v in splits.items() if k != "test"}, rev

    with pytest.raises(click.ClickException, match=r"axon-rl/CodeContest has no split\(s\) \['test'\]"):
        snapshot_datasets(tmp_path, ["eval:CodeContest"], without_test_split)
    runner = CliRunner()
    assert runner.invoke(main, ["--help"]).exit_code == 0
    bad = runner.invoke(main, ["--dest", str(tmp_path), "--dataset-revision", "no-equals-sign"])
    assert bad.exit_code == 2 and "expected NAME=REV" in bad.output
    assert runner.invoke(main, ["--dest", str(tmp_path), "--env", "math:gsm8k"]).exit_code == 2
    assert not (tmp_path / MANIFEST).exists()
