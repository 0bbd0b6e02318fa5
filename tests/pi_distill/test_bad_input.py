"""Bad pi-distill input: clear errors, exit code 2, nothing written under output_dir."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.pi_distill.conftest import run_inproc, write_manifest


def _refused(res, tmp, *words):
    assert res.exit_code == 2, res.output
    for w in words:
        assert w in res.output, res.output
    assert not (tmp / "out").exists()


def _prompts(fx, tmp, edit, name="p.parquet"):
    rows = pq.read_table(fx / "prompts" / "gsm8k.parquet").to_pylist()
    rows = edit(rows)
    path = tmp / name
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_prompts_without_privileged_information(tmp_path, fx):
    def strip(rows):
        for r in rows[3:6]:
            r["extra_info"]["reference_solution"] = ""
        return rows

    m = write_manifest(tmp_path, fx, prompts=_prompts(fx, tmp_path, strip), privileged_source="reference_solution")
    _refused(run_inproc(m), tmp_path, "$.spec.inputs.prompts", "3 of 32 prompts have no privileged information",
             "rows 3, 4, 5", "reference_solution")


def test_code_prompts_without_a_solution_have_no_answer_to_fall_back_on(tmp_path, fx):
    def to_code(rows):
        for r in rows:
            r["data_source"] = "code:CodeContest"
            r["reward_model"]["ground_truth"] = json.dumps({"tests": {"inputs": ["1\n"], "outputs": ["1\n"]}})
            r["extra_info"]["reference_solution"] = None
        return rows

    m = write_manifest(tmp_path, fx, prompts=_prompts(fx, tmp_path, to_code))
    _refused(run_inproc(m), tmp_path, "32 of 32 prompts have no privileged information")


def test_prompts_without_extra_info_fall_back_to_the_answer_only_when_allowed(tmp_path, fx):
    def drop_extra(rows):
        for r in rows:
            del r["extra_info"]
        return rows

    path = _prompts(fx, tmp_path, drop_extra)
    m = write_manifest(tmp_path, fx, prompts=path, privileged_source="reference_solution")
    _refused(run_inproc(m), tmp_path, "32 of 32 prompts have no privileged information")
    from stages.pi_distill.prompts import read_prompts

    rows = read_prompts(path, "reference_or_answer", "v1")
    assert {r.privileged_kind for r in rows} == {"answer"}
    assert rows[0].teacher[-1]["content"].count("72") >= 1  # Natalia's clips: the answer is shown to the teacher


def test_sft_data_instead_of_prompts(tmp_path, fx):
    m = write_manifest(tmp_path, fx, prompts=fx / "sft" / "gsm8k.parquet")
    _refused(run_inproc(m), tmp_path, "not in verl's RL prompt schema", "missing column(s)", "looks like SFT data")


def test_unknown_data_source(tmp_path, fx):
    def rename(rows):
        rows[2]["data_source"] = "openai/gsm8k"
        return rows

    m = write_manifest(tmp_path, fx, prompts=_prompts(fx, tmp_path, rename))
    _refused(run_inproc(m), tmp_path, "row 2", "'openai/gsm8k' is not an env id")


def test_too_few_prompts_after_the_heldout_slice(tmp_path, fx):
    m = write_manifest(tmp_path, fx, prompts=_prompts(fx, tmp_path, lambda rows: rows[:4]), prompts_per_step=4)
    _refused(run_inproc(m), tmp_path, "4 prompts", "1 held out", "prompts_per_step 4")


@pytest.mark.parametrize("key,value,words", [
    ("alpha", 1.5, ("$.spec.params.alpha", "less than or equal to 1")),
    ("alpha", -0.5, ("$.spec.params.alpha", "greater than or equal to 0")),
    ("beta", -0.1, ("$.spec.params.beta", "greater than or equal to 0")),
    ("variant", "gkd", ("$.spec.params.variant",)),
])
def test_params_out_of_bounds(tmp_path, fx, key, value, words):
    _refused(run_inproc(write_manifest(tmp_path, fx, **{key: value})), tmp_path, *words)
