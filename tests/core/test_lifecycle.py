"""The lifecycle, exercised on a real process of the counting stage: skip, preempt and resume, locking, crashes,
and atomic manifest writes."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.core.conftest import counter_manifest, run_counter, start_counter


def record(tmp: Path) -> dict:
    return json.loads((tmp / "out" / "manifest.json").read_text())


def wait_for_steps(tmp: Path, n: int, timeout: float = 60) -> None:
    log = tmp / "out" / "steps.log"
    end = time.time() + timeout
    while time.time() < end:
        if log.exists() and len(log.read_text().split()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"the stage did not reach step {n} in {timeout}s")


def test_success_then_skip_without_work(tmp_path):
    m = counter_manifest(tmp_path, steps=3)
    r = run_counter(m)
    assert r.returncode == 0, r.stderr
    rec = record(tmp_path)
    assert rec["status"]["state"] == "succeeded"
    assert rec["status"]["attempt"] == 1 and rec["status"]["exit_code"] == 0
    assert rec["outputs"]["result"]["digest"].startswith("sha256:")
    assert rec["summary"] == {"steps": 3}
    assert rec["provenance"]["spec_hash"].startswith("sha256:")
    assert rec["provenance"]["libraries"]["pydantic"]
    log_before = (tmp_path / "out" / "steps.log").read_text()

    again = run_counter(m)
    assert again.returncode == 0
    assert "skipped" in again.stdout
    assert (tmp_path / "out" / "steps.log").read_text() == log_before  # no work done
    assert record(tmp_path)["status"]["attempt"] == 1

    forced = run_counter(m, "--force")
    assert forced.returncode == 0
    assert record(tmp_path)["status"]["attempt"] == 1  # a forced rerun starts afresh
    assert (tmp_path / "out" / "steps.log").read_text().split() == ["0", "1", "2"]


@pytest.mark.parametrize("sig", [signal.SIGUSR2, signal.SIGTERM])
def test_signal_preempts_then_resume_succeeds(tmp_path, sig):
    m = counter_manifest(tmp_path, steps=40, sleep_s=0.1)
    p = start_counter(m)
    wait_for_steps(tmp_path, 3)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 75, err
    rec = record(tmp_path)
    assert rec["status"]["state"] == "preempted"
    assert rec["status"]["last_checkpoint"].endswith("state.json")
    assert signal.Signals(sig).name in rec["status"]["message"]
    done_before = len((tmp_path / "out" / "steps.log").read_text().split())
    assert 3 <= done_before < 40

    r = run_counter(m)
    assert r.returncode == 0, r.stderr
    rec = record(tmp_path)
    assert rec["status"]["state"] == "succeeded" and rec["status"]["attempt"] == 2
    steps = [int(x) for x in (tmp_path / "out" / "steps.log").read_text().split()]
    assert steps == list(range(40))  # resumed where it stopped: nothing repeated, nothing skipped
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["attempts"] == [1, 2]


def test_second_concurrent_run_refuses(tmp_path):
    m = counter_manifest(tmp_path, steps=30, sleep_s=0.1)
    first = start_counter(m)
    wait_for_steps(tmp_path, 1)
    second = run_counter(m)
    assert second.returncode == 2
    assert "in use by another run" in second.stderr and "pid" in second.stderr
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)
    assert record(tmp_path)["status"]["state"] == "preempted"  # the refused run wrote nothing


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    m = counter_manifest(tmp_path, steps=2)
    out = tmp_path / "out"
    out.mkdir()
    import socket

    (out / ".lock").write_text(json.dumps({"pid": 999999, "host": socket.gethostname()}))
    r = run_counter(m)
    assert r.returncode == 0, r.stderr
    assert not (out / ".lock").exists()


def test_crash_leaves_failed_with_message_and_resume_after_fix(tmp_path):
    m = counter_manifest(tmp_path, steps=5, crash_at=2)
    r = run_counter(m)
    assert r.returncode == 1
    rec = record(tmp_path)
    assert rec["status"]["state"] == "failed"
    assert rec["status"]["message"] == "RuntimeError: boom at step 2"
    assert rec["status"]["exit_code"] == 1
    assert not (tmp_path / "out" / ".lock").exists()


def test_changed_spec_into_same_output_dir_is_refused(tmp_path):
    assert run_counter(counter_manifest(tmp_path, steps=2)).returncode == 0
    changed = counter_manifest(tmp_path, name="m2.json", steps=3)
    r = run_counter(changed)
    assert r.returncode == 2
    assert "different spec" in r.stderr and "$.spec.output_dir" in r.stderr
    assert record(tmp_path)["summary"] == {"steps": 2}
    assert run_counter(changed, "--force").returncode == 0
    assert record(tmp_path)["summary"] == {"steps": 3}


def test_manifest_is_never_half_written(tmp_path):
    """A reader polling the record during a run always parses a whole manifest."""
    m = counter_manifest(tmp_path, steps=60, sleep_s=0.02)
    seen, bad = [], []
    stop = threading.Event()

    def reader():
        path = tmp_path / "out" / "manifest.json"
        while not stop.is_set():
            if path.exists():
                text = path.read_text()
                try:
                    seen.append(json.loads(text)["status"]["state"])
                except ValueError:
                    bad.append(text)

    t = threading.Thread(target=reader)
    t.start()
    r = run_counter(m)
    stop.set()
    t.join()
    assert r.returncode == 0
    assert not bad
    assert "running" in seen and seen[-1] == "succeeded"


def test_unbuilt_engine_fails_loudly(tmp_path):
    r = run_counter(counter_manifest(tmp_path, unbuilt=True))
    assert r.returncode == 1
    rec = record(tmp_path)
    assert rec["status"]["state"] == "failed"
    assert rec["status"]["message"] == "not implemented yet: counter engine 'quantum'"
    assert "not implemented yet" in r.stderr
