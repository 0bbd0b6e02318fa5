"""Interrupted-and-resumed runs and sharded-then-merged runs give exactly the records of one plain run."""

from __future__ import annotations

import json
import random
import signal
import time

from tests.collector.conftest import record_of, records, run_inproc, start_proc, write_manifest

KEYS = ("position", "item_index", "sample_index", "response", "reward", "verdict", "finish_reason")


def _key(recs):
    return [tuple(json.dumps(r.get(k)) for k in KEYS) for r in recs]


def test_random_interrupts_then_resume_match_plain_run(tmp_path, fx):
    params = dict(max_items=8, batch_size=2, n_samples=2, sampling={"max_new_tokens": 4, "temperature": 1.0})
    plain = write_manifest(tmp_path, fx, "math", "generate", out="plain", name="plain.json", **params)
    assert run_inproc(plain).exit_code == 0
    expected = _key(records(tmp_path / "plain"))
    assert len(expected) == 16

    m = write_manifest(tmp_path, fx, "math", "generate", out="cut", name="cut.json", **params)
    rng = random.Random(7)
    interrupts = 0
    for attempt in range(12):
        p = start_proc(m)
        log = tmp_path / "cut" / "trajectories.jsonl"
        before = log.stat().st_size if log.exists() else 0
        # cut after the attempt has appended at least one new chunk (its handlers are installed by then), at a
        # random point of the next chunk; the first attempt is cut at once so at least one cut always happens
        deadline = time.time() + 240
        while p.poll() is None and time.time() < deadline and (not log.exists() or log.stat().st_size <= before):
            time.sleep(0.02)
        time.sleep(0.0 if attempt == 0 else rng.uniform(0.0, 1.5))
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=300)
        if p.returncode == 0 or record_of(tmp_path / "cut")["status"]["state"] == "succeeded":
            break  # finished (a cut that lands after the final record was written changes nothing)
        assert p.returncode == 75, (p.returncode, err[-3000:])
        interrupts += 1
        assert record_of(tmp_path / "cut")["status"]["state"] == "preempted"
    else:
        raise AssertionError("the collector never finished")
    final = record_of(tmp_path / "cut")
    assert final["status"]["state"] == "succeeded"
    assert _key(records(tmp_path / "cut")) == expected, f"differs after {interrupts} interrupts"
    assert interrupts >= 1


def test_three_shards_merge_into_the_plain_run(tmp_path, fx):
    common = dict(batch_size=2, n_samples=2, sampling={"max_new_tokens": 4, "temperature": 1.0})
    plain = write_manifest(tmp_path, fx, "math", "generate", out="plain", name="plain.json", max_items=6, **common)
    assert run_inproc(plain).exit_code == 0
    shards = []
    for i, (lo, hi) in enumerate([(0, 2), (2, 4), (4, 6)]):
        m = write_manifest(tmp_path, fx, "math", "generate", out=f"s{i}", name=f"s{i}.json",
                           start=lo, stop=hi, max_items=None, **common)
        assert run_inproc(m).exit_code == 0
        shards.append(tmp_path / f"s{i}" / "manifest.json")
    merge = {"schema": "forgetting-llms/manifest/v1", "stage": "collector", "run_id": "t.merge",
             "spec": {"inputs": {f"shard{i}": {"from": f"{s}#outputs.trajectories"} for i, s in enumerate(shards)},
                      "params": {"mode": "merge", "env_id": "math:GSM8K"}, "output_dir": str(tmp_path / "merged")}}
    mp = tmp_path / "merge.json"
    mp.write_text(json.dumps(merge))
    res = run_inproc(mp)
    assert res.exit_code == 0, res.output
    assert _key(records(tmp_path / "merged")) == _key(records(tmp_path / "plain"))
    a = json.loads((tmp_path / "plain" / "stats.json").read_text())
    b = json.loads((tmp_path / "merged" / "stats.json").read_text())
    assert a["pass_at_k"] == b["pass_at_k"] and a["records"] == b["records"] == 12
