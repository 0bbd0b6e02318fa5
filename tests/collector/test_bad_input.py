"""Bad collector input: clear errors, exit code 2 where the manifest is at fault, nothing written."""

from __future__ import annotations

import json
import socket

import pyarrow as pa
import pyarrow.parquet as pq

from tests.collector.conftest import run_inproc, write_manifest


def _edit(path, fn):
    m = json.loads(path.read_text())
    fn(m)
    path.write_text(json.dumps(m))
    return path


def _assert_refused(res, tmp, *words):
    assert res.exit_code == 2, res.output
    for w in words:
        assert w in res.output, res.output
    assert not (tmp / "out").exists()


def test_missing_model_folder(tmp_path, fx):
    m = _edit(write_manifest(tmp_path, fx, "math", "generate"),
              lambda d: d["spec"]["inputs"]["model"].update(uri=str(tmp_path / "nope")))
    _assert_refused(run_inproc(m), tmp_path, "$.spec.inputs.model", "does not exist")


def test_generate_without_model(tmp_path, fx):
    _assert_refused(run_inproc(write_manifest(tmp_path, fx, "math", "generate", model=False)), tmp_path,
                    "needs the input 'model'")


def test_unloadable_model(tmp_path, fx):
    bad = tmp_path / "badmodel"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    m = _edit(write_manifest(tmp_path, fx, "math", "generate"),
              lambda d: d["spec"]["inputs"]["model"].update(uri=str(bad)))
    _assert_refused(run_inproc(m), tmp_path, "config.json is not JSON")


def test_dataset_without_needed_columns(tmp_path, fx):
    d = tmp_path / "ds"
    d.mkdir()
    pq.write_table(pa.table({"question_text": ["1+1?"], "label": ["2"]}), d / "train.parquet")
    m = _edit(write_manifest(tmp_path, fx, "math", "ground-truth", model=False),
              lambda x: x["spec"]["inputs"]["dataset"].update(uri=str(d)))
    _assert_refused(run_inproc(m), tmp_path, "$.spec.inputs.dataset", "problem")


def test_n_below_one(tmp_path, fx):
    _assert_refused(run_inproc(write_manifest(tmp_path, fx, "math", "generate", n_samples=0)), tmp_path,
                    "$.spec.params.n_samples", "greater than or equal to 1")


def test_teacher_endpoint_that_refuses(tmp_path, fx):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    m = _edit(write_manifest(tmp_path, fx, "math", "generate", model=False),
              lambda d: (d["spec"].update(runtime={"engine": "openai"}),
                         d["spec"]["params"].update(openai={"base_url": f"http://127.0.0.1:{port}/v1"})))
    _assert_refused(run_inproc(m), tmp_path, "teacher endpoint", "cannot be reached")


def test_shard_start_past_end(tmp_path, fx):
    _assert_refused(run_inproc(write_manifest(tmp_path, fx, "math", "prompts", model=False, start=100000)),
                    tmp_path, "$.spec.params.start", "past the end")
