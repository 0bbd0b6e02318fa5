"""Bad spin input: a clear error naming what is wrong, exit code 2, nothing written under output_dir."""

from __future__ import annotations

import json

import pytest

from tests.spin.conftest import prompt_rows, run_inproc, write_manifest, write_prompts


def _refused(res, tmp, *words):
    assert res.exit_code == 2, res.output
    for w in words:
        assert w in res.output, res.output
    assert not (tmp / "out").exists(), "nothing may be written for a refused manifest"


def _with_rows(tmp, tiny_model_dir, edit, **params):
    rows = prompt_rows()
    edit(rows)
    prompts = write_prompts(tmp / "bad.parquet", rows)
    return run_inproc(write_manifest(tmp, tiny_model_dir, prompts, **params))


def test_prompt_without_ground_truth(tmp_path, tiny_model_dir):
    def edit(rows):
        rows[2]["reward_model"]["ground_truth"] = None

    _refused(_with_rows(tmp_path, tiny_model_dir, edit), tmp_path, "$.spec.inputs.prompts", "row 2",
             "no ground truth")


def test_prompts_without_a_reward_model_column(tmp_path, tiny_model_dir):
    def edit(rows):
        for r in rows:
            del r["reward_model"]

    _refused(_with_rows(tmp_path, tiny_model_dir, edit), tmp_path, "lacks the column(s) reward_model")


def test_prompt_without_reference_solution_when_one_is_required(tmp_path, tiny_model_dir):
    def edit(rows):
        rows[1]["extra_info"]["reference_solution"] = None

    res = _with_rows(tmp_path, tiny_model_dir, edit, chosen_source="reference_solution")
    _refused(res, tmp_path, "row 1", "no extra_info.reference_solution")


def test_code_prompt_without_solution_has_no_chosen_side(tmp_path, tiny_model_dir):
    def edit(rows):
        rows[0].update(data_source="code:CodeContest",
                       reward_model={"style": "rule",
                                     "ground_truth": json.dumps({"tests": {"inputs": ["1"], "outputs": ["1"]}})})
        rows[0]["extra_info"]["reference_solution"] = ""

    _refused(_with_rows(tmp_path, tiny_model_dir, edit), tmp_path, "row 0", "needs a ground-truth response")


def test_prompt_that_is_not_chat_messages(tmp_path, tiny_model_dir):
    def edit(rows):
        for r in rows:
            r["prompt"] = [{"role": "narrator", "content": "hello"}]

    _refused(_with_rows(tmp_path, tiny_model_dir, edit), tmp_path, "row 0", "chat messages")


def test_unknown_data_source(tmp_path, tiny_model_dir):
    def edit(rows):
        rows[3]["data_source"] = "math:Unknown"

    _refused(_with_rows(tmp_path, tiny_model_dir, edit), tmp_path, "row 3", "math:Unknown")


def test_prompts_file_that_is_not_parquet(tmp_path, tiny_model_dir):
    bad = tmp_path / "prompts.parquet"
    bad.write_text("not parquet")
    _refused(run_inproc(write_manifest(tmp_path, tiny_model_dir, bad)), tmp_path, "not a readable parquet file")


def test_model_folder_without_config(tmp_path, spin_prompts):
    empty = tmp_path / "model"
    empty.mkdir()
    _refused(run_inproc(write_manifest(tmp_path, empty, spin_prompts)), tmp_path, "$.spec.inputs.model",
             "no config.json")


@pytest.mark.parametrize("params, where, words", [
    ({"iterations": 0}, "$.spec.params.iterations", "greater than or equal to 1"),
    ({"beta": 0.0}, "$.spec.params.beta", "greater than 0"),
    ({"beta": -0.5}, "$.spec.params.beta", "greater than 0"),
    ({"max_prompt_length": 121}, "$.spec.params", "must be <= `max_length`"),
    ({"micro_batch_tokens": 200}, "$.spec.params", "2 x `max_length`"),
    ({"correct_sample_policy": "sometimes"}, "$.spec.params.correct_sample_policy", "keep"),
])
def test_bad_params(tmp_path, tiny_model_dir, spin_prompts, params, where, words):
    _refused(run_inproc(write_manifest(tmp_path, tiny_model_dir, spin_prompts, **params)), tmp_path, where, words)


def test_validate_names_the_bad_row(tmp_path, tiny_model_dir):
    from click.testing import CliRunner

    from stages.spin.cli import main

    rows = prompt_rows()
    rows[0]["reward_model"]["ground_truth"] = "  "
    m = write_manifest(tmp_path, tiny_model_dir, write_prompts(tmp_path / "p.parquet", rows))
    res = CliRunner().invoke(main, ["validate", "--manifest", str(m)])
    assert res.exit_code == 2 and "row 0 has no ground truth" in res.output, res.output


def test_a_partial_optim_block_keeps_the_paper_schedule():
    from stages.spin.params import SPINParams

    p = SPINParams.model_validate({"optim": {"lr": 1e-6}, "sampling": {"max_new_tokens": 24}})
    assert (p.optim.lr, p.optim.schedule, p.optim.warmup_ratio, p.optim.weight_decay) == (1e-6, "linear", 0.1, 0.0)
    assert (p.sampling.max_new_tokens, p.sampling.temperature) == (24, 1.0)


@pytest.mark.parametrize("resources, params, where, words", [
    ({"gpus_per_node": 4, "nodes": 2}, {"global_batch_size": 4}, "$.spec.params.global_batch_size",
     "smaller than the 8 training ranks"),
    ({"gpus_per_node": 2}, {"vllm": {"tensor_parallel_size": 4}}, "$.spec.params.vllm.tensor_parallel_size",
     "does not divide the batch node's 2 GPU(s)"),
    ({"gpus_per_node": 4}, {"global_batch_size": 4, "vllm": {"tensor_parallel_size": 2, "data_parallel_size": 4}},
     "$.spec.params.vllm.data_parallel_size", "4 replica(s) x 2 GPU(s) is more than the batch node's 4"),
])
def test_resources_the_run_cannot_use(tmp_path, tiny_model_dir, spin_prompts, resources, params, where, words):
    res = run_inproc(write_manifest(tmp_path, tiny_model_dir, spin_prompts, resources=resources, **params))
    _refused(res, tmp_path, where, words)


def test_vllm_generation_without_vllm_is_refused(tmp_path, tiny_model_dir, spin_prompts, monkeypatch):
    monkeypatch.setenv("FLLM_VLLM_PYTHON", str(tmp_path / "no-such-python"))
    res = run_inproc(write_manifest(tmp_path, tiny_model_dir, spin_prompts, generation_backend="vllm"))
    _refused(res, tmp_path, "$.spec.params.generation_backend", "FLLM_VLLM_PYTHON")
