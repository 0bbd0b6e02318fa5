"""Bad input gets a clear error naming the file and the fault, exit code 2 from both `validate` and a run, and
nothing written under the output folder (the checks run in the stage's preflight)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.analyzer.conftest import analyzer_manifest, invoke
from tests.analyzer.synthetic import MANIFEST, RESULTS, _results, _scores, _write_run, base_id


def _results_file(tmp: Path, name: str, rid: str, schema: str = RESULTS) -> Path:
    doc = _results(rid, {"method": "BASE", "start": "BASE", "model_size": "4B"}, _scores("BASE", "4B", 0.0, {}))
    doc["schema"] = schema
    p = tmp / name
    p.write_text(json.dumps(doc))
    return p


def _direct(*paths: Path) -> dict:
    return {f"r{i}": {"uri": str(p), "kind": "eval_results"} for i, p in enumerate(paths)}


def _expect_refused(tmp: Path, inputs: dict | None, params: dict | None, *words: str) -> str:
    out = tmp / "out"
    m = analyzer_manifest(tmp / "m.json", out, params, inputs)
    for args in (["validate", "--manifest", str(m)], ["--manifest", str(m)]):
        res = invoke(*args)
        assert res.exit_code == 2, res.output
        for w in words:
            assert w in res.output, res.output
    assert not out.exists()
    return res.output


def test_mixed_schema_versions(tmp_path):
    a = _results_file(tmp_path, "a.json", "run.a")
    b = _results_file(tmp_path, "b.json", "run.b", schema="forgetting-llms/eval-results/v2")
    _expect_refused(tmp_path, _direct(a, b), None, "different schema versions", str(a), str(b), "eval-results/v2")


def test_unsupported_schema_version(tmp_path):
    b = _results_file(tmp_path, "b.json", "run.b", schema="forgetting-llms/eval-results/v2")
    _expect_refused(tmp_path, _direct(b), None, str(b), "reads only 'forgetting-llms/eval-results/v1'")


def test_duplicate_run_ids(tmp_path):
    a = _results_file(tmp_path, "a.json", "same.run")
    b = _results_file(tmp_path, "b.json", "same.run")
    _expect_refused(tmp_path, _direct(a, b), None, "duplicate run id 'same.run'", str(a), str(b))


def test_a_manifest_given_as_results(tmp_path):
    m = _write_run(tmp_path / "study", "eval.x", _results("eval.x", {}, []))
    words = "manifest of an 'evaluator' run, not an evaluator results"
    out = _expect_refused(tmp_path, _direct(m), None, str(m), words)
    assert f"{m}#outputs.results" in out  # says how to link it instead


def test_link_to_a_manifest_that_is_not_an_evaluator(tmp_path):
    results = _results_file(tmp_path, "r.json", "run.r")
    train = tmp_path / "train.json"
    train.write_text(json.dumps({
        "schema": MANIFEST, "stage": "sft-trainer", "run_id": "train", "spec": {"output_dir": str(tmp_path)},
        "status": {"state": "succeeded"}, "outputs": {"results": {"uri": str(results), "kind": "eval_results"}},
    }))
    _expect_refused(tmp_path, {"x": {"from": f"{train}#outputs.results"}}, None, str(train),
                    "'sft-trainer' manifest, not an evaluator result", "$.spec.inputs.x.from")


def test_not_a_results_document(tmp_path):
    p = tmp_path / "other.json"
    p.write_text(json.dumps({"schema": "something/else", "rows": []}))
    _expect_refused(tmp_path, _direct(p), None, str(p), "not an evaluator results document", "'something/else'")


def test_invalid_results_name_the_field(tmp_path):
    p = _results_file(tmp_path, "bad.json", "run.bad")
    doc = json.loads(p.read_text())
    del doc["run_id"]
    doc["scores"][0]["value"] = "high"
    p.write_text(json.dumps(doc))
    _expect_refused(tmp_path, _direct(p), None, str(p), "$.run_id", "$.scores[0].value")


def test_malformed_results_json(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"schema": ')
    _expect_refused(tmp_path, _direct(p), None, str(p), "malformed JSON")


def test_results_changed_after_the_evaluator_recorded_them(tmp_path):
    study = tmp_path / "study"
    m = _write_run(study, base_id("BASE", "4B"), _results(base_id("BASE", "4B"), {}, []))
    (m.parent / "results.json").write_text(json.dumps(_results(base_id("BASE", "4B"), {"seed": 3}, [])))
    _expect_refused(tmp_path, None, {"study_dir": str(study)}, "changed since evaluator run", str(m))


def test_study_dir_missing_or_empty(tmp_path):
    _expect_refused(tmp_path, None, {"study_dir": str(tmp_path / "nope")}, "$.spec.params.study_dir", "nope")
    (tmp_path / "empty").mkdir()
    _expect_refused(tmp_path, None, {"study_dir": str(tmp_path / "empty")}, "no evaluator results to analyse",
                    "none under study_dir")
    _expect_refused(tmp_path, None, None, "no evaluator results to analyse")


def test_bad_results_inside_a_study_dir(study, tmp_path):
    """One bad document in an otherwise good study folder refuses the whole analysis, naming that file."""
    copy = tmp_path / "study"
    shutil.copytree(study, copy)  # the copied manifests still point at the original results: all valid
    doc = json.loads((study / base_id("BASE", "4B") / "results.json").read_text())
    _write_run(copy, "eval.extra", {**doc, "run_id": "eval.extra", "schema": "forgetting-llms/eval-results/v0"})
    bad = copy / "eval.extra" / "results.json"
    _expect_refused(tmp_path, None, {"study_dir": str(copy)}, "different schema versions", str(bad), "eval-results/v0")


@pytest.mark.parametrize("params", [{"confidence": 1.0}, {"figure_formats": ["pdf"]}, {"unknown": 1}])
def test_bad_params(tmp_path, params):
    _expect_refused(tmp_path, None, params, "$.spec.params")
