"""The snapshot command against a local hub (``tests/study/stage_hub.py``): huggingface_hub's own client downloads,
the layout is what the adapter reads, model folders are named as the study files expect, worked solutions are joined
in, and the manifest's digests catch a changed file. Bad options and a missing split are clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from stages.envs import ENVS
from stages.envs.snapshot import MANIFEST, Fetched, SnapshotError, check_layout, main, plan_datasets, split_of
from stages.envs.snapshot import write_gem_dataset
from tests.fixtures.build import shared_data
from tests.study.stage_hub import LocalHub, gem_repos, parquet_bytes, source_repos

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / ".fixtures"

pytestmark = pytest.mark.timeout(180)


def test_plan_groups_env_ids_by_dataset():
    plan = plan_datasets(ENVS)
    assert len(plan) == 5 and plan["axon-rl/CodeContest"]["splits_needed"] == ["train", "test"]
    assert plan["axon-rl/search-eval"]["folder"] == "search-eval"


def test_split_names_follow_the_hub_file_names():
    assert split_of("data/train-00000-of-00001.parquet") == "train"
    assert split_of("data/math-00000-of-00003.parquet") == "math"
    assert split_of("nq.jsonl") == "nq" and split_of("main/test-00000-of-00001.parquet") == "test"


def test_snapshot_from_a_hub_is_what_the_adapter_and_the_study_read(tmp_path):
    hub = LocalHub()
    model = FIXTURES / "tiny-qwen3"
    hub.add("model", "Qwen/Qwen3-4B-Base", {n: model / n for n in ("config.json", "generation_config.json")},
            "apache-2.0")  # a model repo's small files are enough to show where the folder goes
    gem_repos(hub, FIXTURES / "datasets")
    source_repos(hub, shared_data(), FIXTURES / "datasets")
    server, url = hub.start()
    dest = tmp_path / "forgetting-llms"
    try:
        proc = subprocess.run([sys.executable, "-m", "stages.envs.snapshot", "--dest", str(dest), "--env",
                               "math:GSM8K", "--model", "Qwen/Qwen3-4B-Base", "--endpoint", url],
                              capture_output=True, text=True, check=False, timeout=150)
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the folder phase 1 reads with models.root: <dest>/models (Qwen/Qwen3-4B-Base -> models/Qwen3-4B-Base)
    from stages.study.definition import load_study
    from stages.study.paths import model_path

    study = load_study("phase1")
    study.models.root = str(dest / "models")
    assert model_path(study, "Qwen3-4B-Base", "local") == str(dest / "models" / "Qwen3-4B-Base")
    assert (dest / "models" / "Qwen3-4B-Base" / "config.json").is_file()
    manifest = json.loads((dest / MANIFEST).read_text())
    assert manifest["models"][0]["folder"] == "models/Qwen3-4B-Base"
    assert manifest["models"][0]["revision"] == hub.repos[("model", "Qwen/Qwen3-4B-Base")].sha
    assert manifest["models"][0]["licence"] == "apache-2.0"
    gsm = manifest["datasets"][0]
    assert gsm["name"] == "axon-rl/GSM-8k" and set(gsm["splits"]) == {"train", "test"}
    assert gsm["joins"]["train"]["matched"] == 39 and gsm["splits"]["train"]["rows"] == 40
    assert manifest["solution_sources"] == [{"name": "openai/gsm8k", "licence": "mit", "for": ["math:GSM8K"],
                                             "revision": hub.repos[("dataset", "openai/gsm8k")].sha}]
    solutions = pq.read_table(dest / "datasets/gsm-8k/train.parquet").column("solution").to_pylist()
    assert sum(s is not None for s in solutions) == 39 and solutions[0].endswith("$\\boxed{72}$.")
    assert check_layout(dest, ["math:GSM8K"]) == {"math:GSM8K": 40}
    res = CliRunner().invoke(main, ["--dest", str(dest), "--env", "math:GSM8K", "--check"])
    assert res.exit_code == 0 and "math:GSM8K: 40 rows" in res.output
    (dest / "datasets" / "gsm-8k" / "test.parquet").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="differs from"):
        check_layout(dest, ["math:GSM8K"])


def test_missing_split_and_bad_options_are_clear_errors(tmp_path):
    raw = tmp_path / "raw"
    (raw / "data").mkdir(parents=True)
    (raw / "data" / "train-00000-of-00001.parquet").write_bytes(parquet_bytes([{"problem": "p", "tests": "{}"}]))
    fetched = Fetched("axon-rl/CodeContest", "dataset", "0" * 40, None, raw)
    with pytest.raises(SnapshotError, match=r"axon-rl/CodeContest has no split\(s\) \['test'\]"):
        write_gem_dataset(fetched, tmp_path / "out", ["eval:CodeContest"])
    runner = CliRunner()
    assert runner.invoke(main, ["--help"]).exit_code == 0
    bad = runner.invoke(main, ["--dest", str(tmp_path), "--dataset-revision", "no-equals-sign"])
    assert bad.exit_code == 2 and "expected NAME=REV" in bad.output
    assert runner.invoke(main, ["--dest", str(tmp_path), "--env", "math:gsm8k"]).exit_code == 2
    assert not (tmp_path / MANIFEST).exists()


def test_join_matches_normalised_problems_and_refuses_a_different_answer(tmp_path):
    import pyarrow as pa

    from stages.envs.solutions import SOURCES, join_solutions, solution_index

    src = SOURCES["gsm8k"]
    rows = [{"question": "Tom has 3 apples.  He eats one. How many?", "answer": "He has 3-1=<<3-1=2>>2.\n#### 2"},
            {"question": "A pen costs $1,200. Twice?", "answer": "2*1200=<<2*1200=2400>>2400\n#### 2,400"},
            {"question": "What is 5+5?", "answer": "5+5=10\n#### 10"}]
    (tmp_path / "main").mkdir()
    (tmp_path / "main" / "train-00000-of-00001.parquet").write_bytes(parquet_bytes(rows))
    index = solution_index(src, [tmp_path / "main" / "train-00000-of-00001.parquet"])
    gem = pa.Table.from_pylist([{"problem": "tom has 3 apples. he eats one.\nHow many?", "answer": "2.0"},
                                {"problem": "A pen costs $1,200. Twice?", "answer": "2400"},
                                {"problem": "What is 5+5?", "answer": "11"},  # disagrees: not used
                                {"problem": "Not in the source", "answer": "1"}])
    table, stats = join_solutions(gem, "math:GSM8K", src, index)
    assert stats.as_dict() == {"rows": 4, "matched": 2, "kept": 0, "answer_mismatch": 1, "rate": 0.5}
    assert table.column("solution").to_pylist() == [
        "He has 3-1=2.\nThe answer is $\\boxed{2}$.", "2*1200=2400\nThe answer is $\\boxed{2,400}$.", None, None]
