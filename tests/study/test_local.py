"""The local executor runs a study's DAG here as real stage processes: in dependency order, skipping what already
succeeded, leaving dependents of a failure not run, replacing runs the study changed, and reporting a `running`
record whose process died as stale. The smoke study (what `make smoke` runs) succeeds with the stages it lists."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from click.testing import CliRunner

from stages.study.cli import main
from tests.study.conftest import REPO, counter_run, diamond, record, write_study


def study(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.output + res.stderr


def test_diamond_runs_in_order_then_nothing_reruns(tmp_path, counter_env):
    path, root = diamond(tmp_path), tmp_path / "runs"
    code, out = study("run", str(path), "--executor", "local", "--root", str(root), "-j", "2")
    assert code == 0, out
    recs = {r: record(root, "diamond", r) for r in "abcd"}
    assert all(r["status"]["state"] == "succeeded" for r in recs.values())
    a_end = recs["a"]["status"]["ended_at"]
    assert all(recs[r]["status"]["started_at"] >= a_end for r in "bc")
    assert recs["d"]["status"]["started_at"] >= max(recs[r]["status"]["ended_at"] for r in "bc")
    assert recs["b"]["spec"]["inputs"]["seed_file"]["from"] == f"{root}/diamond/a/out/manifest.json#outputs.result"
    assert (root / "diamond" / "a" / "manifest.json").is_file()  # the planned manifest beside the stage's record

    logs = {r: (root / "diamond" / r / "local.log").read_text() for r in "abcd"}
    code, out = study("run", str(path), "--executor", "local", "--root", str(root))
    assert code == 0 and "0 to run, 4 already done" in out
    assert {r: (root / "diamond" / r / "local.log").read_text() for r in "abcd"} == logs  # no process started
    assert record(root, "diamond", "a")["status"]["attempt"] == 1


def test_failure_leaves_dependents_not_run_and_status_says_why(tmp_path, counter_env):
    path, root = diamond(tmp_path, crash_at=1), tmp_path / "runs"
    code, out = study("run", str(path), "--executor", "local", "--root", str(root))
    assert code == 1
    assert "FAIL" in out and "boom at step 1" in out
    assert not (root / "diamond" / "b" / "out").exists() and not (root / "diamond" / "d" / "out").exists()
    code, out = study("status", str(path), "--root", str(root))
    assert code == 0
    lines = {ln.split()[0]: ln for ln in out.splitlines()[2:] if ln and not ln.startswith(" ")}
    assert " failed " in lines["a"] and "RuntimeError: boom at step 1" in lines["a"]
    assert "attempt-1.log" in out and "local.log" in out
    for r in "bcd":
        assert " blocked " in lines[r] and "upstream a failed" in lines[r]

    # the study is fixed: the changed run replaces its failed record, and everything downstream runs
    diamond(tmp_path, crash_at=None)
    code, out = study("run", str(path), "--executor", "local", "--root", str(root))
    assert code == 0, out
    assert all(record(root, "diamond", r)["status"]["state"] == "succeeded" for r in "abcd")


def test_changed_upstream_reruns_its_dependents(tmp_path, counter_env):
    root = tmp_path / "runs"
    path = write_study(tmp_path, "chain", [counter_run("a", steps=2), counter_run("b", seed_from="a", steps=1)])
    assert study("run", str(path), "--root", str(root))[0] == 0
    b_before = record(root, "chain", "b")["provenance"]["spec_hash"]
    write_study(tmp_path, "chain", [counter_run("a", steps=3), counter_run("b", seed_from="a", steps=1)])
    code, out = study("run", str(path), "--root", str(root))
    assert code == 0 and "2 to run" in out, out
    assert json.loads((root / "chain" / "a" / "out" / "result.json").read_text())["step"] == 3
    assert record(root, "chain", "b")["provenance"]["spec_hash"] != b_before  # b re-ran on a's new output


def test_running_record_of_a_dead_process_is_stale(tmp_path, counter_env):
    root = tmp_path / "runs"
    path = write_study(tmp_path, "slow", [counter_run("s", steps=200, sleep_s=0.1)])
    proc = subprocess.Popen([sys.executable, "-m", "stages.study.cli", "run", str(path), "--root", str(root)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = root / "slow" / "s" / "out" / ".lock"
    deadline = time.time() + 60
    while not (lock.exists() and (root / "slow" / "s" / "out" / "steps.log").exists()):
        assert time.time() < deadline, "the stage never started"
        time.sleep(0.1)
    os.kill(json.loads(lock.read_text())["pid"], signal.SIGKILL)  # a crash that leaves no final record
    proc.wait(timeout=60)
    assert record(root, "slow", "s")["status"]["state"] == "running"
    code, out = study("status", str(path), "--root", str(root), "--json")
    row = json.loads(out)[0]
    assert row["state"] == "stale" and "gone" in row["detail"]


@pytest.mark.slow
def test_smoke_study_runs_what_is_enabled(tmp_path, monkeypatch, fixtures_dir):
    """What `make smoke` runs (minutes on 2 cores): every run of the stages its `stages` list enables succeeds."""
    monkeypatch.chdir(REPO)
    doc = yaml.safe_load((REPO / "manifests" / "studies" / "smoke.yaml").read_text())
    code, out = study("run", "manifests/studies/smoke.yaml", "--executor", "local", "--root", str(tmp_path / "r"))
    assert code == 0, out
    rows = json.loads(study("status", "manifests/studies/smoke.yaml", "--root", str(tmp_path / "r"), "--json")[1])
    assert rows and {r["state"] for r in rows} == {"succeeded"}
    assert {r["stage"] for r in rows} == set(doc["stages"])
