"""The GEM adapter: six env ids on local folders, deterministic items, the real GEM envs, clear errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages.envs import (
    ENVS,
    DatasetLayoutError,
    GroundTruthError,
    UnknownEnvError,
    dataset_dir_for,
    grade_many,
    open_env,
    shard_range,
)
from stages.envs.gem_bridge import gem_env_for_item, gem_step

pytestmark = pytest.mark.timeout(120)  # every test here is bounded


def test_fixture_folders_use_the_registry_layout(fixture_datasets, tmp_path):
    assert set(fixture_datasets) == set(ENVS)
    root = fixture_datasets["math:GSM8K"].parent
    for env_id, folder in fixture_datasets.items():
        assert folder == dataset_dir_for(root, env_id)
        assert len(open_env(env_id, folder)) >= 20
        assert len(open_env(env_id, root)) == len(open_env(env_id, folder))  # a datasets root works too
    assert len(open_env("math:GSM8K", fixture_datasets["math:GSM8K"], split="test")) == 24
    import time

    from tests.fixtures.datasets import build_fixture_datasets

    start = time.monotonic()
    again = build_fixture_datasets(tmp_path)
    assert time.monotonic() - start < 5
    for env_id in ENVS:  # deterministic: byte-identical files
        name = f"{ENVS[env_id].split}.parquet"
        assert (again[env_id] / name).read_bytes() == (fixture_datasets[env_id] / name).read_bytes()


@pytest.mark.parametrize("env_id", list(ENVS))
def test_items_carry_prompt_ground_truth_and_metadata(fixture_datasets, env_id):
    ds = open_env(env_id, fixture_datasets[env_id], thinking=True)
    item = next(ds.items(seed=3))
    assert item.env_id == env_id and item.domain == ENVS[env_id].domain
    assert item.messages[-1]["role"] == "user" and item.question.strip()[:30] in item.messages[-1]["content"]
    assert item.metadata["chat_template_kwargs"] == {"enable_thinking": True}
    json.dumps(item.ground_truth)  # JSON-safe, as the verl parquet needs
    if env_id != "eval:NaturalQuestions" and env_id != "qa:NaturalQuestions":
        assert item.reference_solution
    key = {"math": "answer", "qa": "answers", "code": "tests"}[item.domain]
    assert key in item.ground_truth


def test_iteration_is_seeded_and_shards_cover_everything(fixture_datasets):
    ds = open_env("eval:MATH500", fixture_datasets["eval:MATH500"])
    a = [it.index for it in ds.items(seed=7)]
    assert a == [it.index for it in ds.items(seed=7)]
    assert a != [it.index for it in ds.items(seed=8)] and sorted(a) == list(range(len(ds)))
    assert [it.index for it in ds.items(seed=None)] == list(range(len(ds)))
    parts = [[it.index for it in ds.items(7, *shard_range(len(ds), 3, k))] for k in range(3)]
    assert [i for part in parts for i in part] == a
    assert [it.metadata["position"] for it in ds.items(7, 5, 8)] == [5, 6, 7]


@pytest.mark.timeout(120)
def test_reference_solutions_pass_our_graders_and_the_real_gem_envs(fixture_datasets, graders, tmp_path, monkeypatch):
    import os
    import sys

    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    monkeypatch.chdir(tmp_path)
    for env_id in ("math:GSM8K", "eval:MATH500", "code:CodeContest", "eval:CodeContest"):
        ds = open_env(env_id, fixture_datasets[env_id])
        items = list(ds.items(seed=0, stop=8))
        verdicts = graders.grade_many(env_id, [it.reference_solution for it in items], [it.ground_truth for it in items])
        assert all(v.correct for v in verdicts), [v for v in verdicts if not v.correct][:2]
        env = ds.gem_env()  # the real GEM env, built on these rows (no download)
        for it in items[:4]:
            reward, _ = gem_step(gem_env_for_item(env, it), it.reference_solution)
            assert reward == 1.0, (env_id, it.index)
    qa = open_env("qa:NaturalQuestions", fixture_datasets["qa:NaturalQuestions"])
    env = qa.gem_env()
    for it in qa.items(seed=0, stop=4):
        answer = f"<answer>{it.ground_truth['answers'][0]}</answer>"
        assert gem_step(gem_env_for_item(env, it), answer)[0] == 1.0
        assert gem_step(gem_env_for_item(env, it), "no tag here")[0] == 0.0  # GEM 0.1.0 would crash
        assert grade_many("qa:NaturalQuestions", [answer], [it.ground_truth])[0].correct


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows) if rows else pa.table({"problem": pa.array([], pa.string()),
                                                                        "answer": pa.array([], pa.string())}), path)


def test_bad_input_gets_clear_errors(tmp_path, fixture_datasets):
    with pytest.raises(UnknownEnvError, match="unknown env id 'math:gsm8k'.*math:GSM8K"):
        open_env("math:gsm8k", fixture_datasets["math:GSM8K"])
    assert issubclass(UnknownEnvError, ValueError)
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        open_env("math:GSM8K", tmp_path / "nowhere")
    with pytest.raises(DatasetLayoutError, match=r"no split 'nq'.*splits found: train"):
        open_env("eval:NaturalQuestions", fixture_datasets["qa:NaturalQuestions"])
    _write(tmp_path / "wrongcols" / "train.parquet", [{"question": "q", "answer": "1"}])
    with pytest.raises(DatasetLayoutError, match=r"lacks column\(s\) problem.*columns present: question, answer"):
        open_env("math:GSM8K", tmp_path / "wrongcols")
    _write(tmp_path / "empty" / "train.parquet", [])
    with pytest.raises(DatasetLayoutError, match="split 'train' of math:GSM8K is empty"):
        open_env("math:GSM8K", tmp_path / "empty")
    _write(tmp_path / "badtests" / "train.parquet", [{"problem": "p", "tests": json.dumps([{"input": "1"}])}])
    with pytest.raises(DatasetLayoutError, match="row 0, column 'tests'.*list of dicts"):
        open_env("code:CodeContest", tmp_path / "badtests")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "train.parquet").write_text("not parquet")
    with pytest.raises(DatasetLayoutError, match="not a readable parquet file"):
        open_env("math:GSM8K", tmp_path / "junk")
    with pytest.raises(UnknownEnvError, match="unknown domain or env id 'maths'"):
        grade_many("maths", ["x"], ["1"])
    with pytest.raises(GroundTruthError, match="2 inputs but 1 outputs"):
        grade_many("code", ["x"], [{"inputs": ["1", "2"], "outputs": ["1"]}])
    with pytest.raises(GroundTruthError, match="empty alias list"):
        grade_many("qa", ["x"], [[]])
