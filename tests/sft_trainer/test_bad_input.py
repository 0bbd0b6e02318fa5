"""Bad SFT input is refused before anything is written or any GPU time is spent: exit 2, a message naming the
fault and its place in the manifest, and no output folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from stages.sft_trainer.cli import main as sft_cli
from tests.sft_trainer.conftest import gsm8k_conversations, sft_manifest, write_messages_parquet

GOOD = gsm8k_conversations(40)


def refused(tmp: Path, manifest: Path, path: str, *words: str) -> None:
    """`validate` and a real run must both refuse (the run is only tried once validate refused)."""
    for cmd in ("validate", "run"):
        res = CliRunner().invoke(sft_cli, [cmd, "--manifest", str(manifest)])
        assert res.exit_code == 2, res.output
        assert path in res.output, res.output
        for w in words:
            assert w in res.output, res.output
    assert not (tmp / "out").exists()


def data_file(tmp: Path, rows, **columns) -> Path:
    return write_messages_parquet(tmp / "data.parquet", rows, **columns)


def test_good_manifest_validates_and_writes_nothing(tmp_path, tiny_model_dir, sft_parquet):
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet)
    res = CliRunner().invoke(sft_cli, ["validate", "--manifest", str(m)])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "out").exists()


def test_empty_data(tmp_path, tiny_model_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])))])
    pq.write_table(schema.empty_table(), tmp_path / "empty.parquet")
    refused(tmp_path, sft_manifest(tmp_path, tiny_model_dir, tmp_path / "empty.parquet"), "$.spec.inputs.data",
            "no rows")


def test_not_parquet(tmp_path, tiny_model_dir):
    (tmp_path / "d.parquet").write_text("question,answer\n1,2\n")
    refused(tmp_path, sft_manifest(tmp_path, tiny_model_dir, tmp_path / "d.parquet"), "$.spec.inputs.data",
            "not a readable parquet")


def test_no_messages_column(tmp_path, tiny_model_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"prompt": ["q"], "response": ["a"]}), tmp_path / "d.parquet")
    refused(tmp_path, sft_manifest(tmp_path, tiny_model_dir, tmp_path / "d.parquet"), "$.spec.inputs.data",
            "no `messages` column", "prompt, response")


@pytest.mark.parametrize("case,row,words", [
    ("ends with user", [{"role": "user", "content": "hi"}], "last message is 'user'"),
    ("unknown role", [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}], "role 'bot'"),
    ("empty answer", [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}], "empty"),
    ("no list", None, "non-empty list"),
])
def test_wrongly_shaped_messages(tmp_path, tiny_model_dir, case, row, words):
    if row is None:  # `messages` holding plain strings instead of {role, content} lists
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"messages": ["What is 2+2?", "4"]}), tmp_path / "data.parquet")
        data = tmp_path / "data.parquet"
    else:
        data = data_file(tmp_path, GOOD[:10] + [row] + GOOD[10:])
    refused(tmp_path, sft_manifest(tmp_path, tiny_model_dir, data), "$.spec.inputs.data", "not valid chat", words)


def test_max_length_shorter_than_every_example(tmp_path, tiny_model_dir, sft_parquet):
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, params={"max_length": 24, "truncation": "drop"})
    refused(tmp_path, m, "$.spec.params.max_length", "shorter than every example")


def test_some_rows_too_long_fail_with_truncation_error(tmp_path, tiny_model_dir, sft_parquet):
    long = [[{"role": "user", "content": "Add one. " * 400}, {"role": "assistant", "content": "Done."}]]
    data = data_file(tmp_path, GOOD + long)
    refused(tmp_path, sft_manifest(tmp_path, tiny_model_dir, data), "$.spec.params.max_length",
            "1 of 41 rows are longer than max_length 512", "truncation")


@pytest.mark.parametrize("nodes,gpus,batch", [(1, 3, 8), (2, 4, 12), (2, 1, 5)])
def test_batch_that_does_not_divide_across_gpus(tmp_path, tiny_model_dir, sft_parquet, nodes, gpus, batch):
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, params={"global_batch_size": batch},
                     resources={"nodes": nodes, "gpus_per_node": gpus})
    refused(tmp_path, m, "$.spec.params.global_batch_size", f"does not divide across {nodes * gpus}")


def test_too_few_rows_for_one_step(tmp_path, tiny_model_dir, sft_parquet):
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, params={"global_batch_size": 64})
    refused(tmp_path, m, "$.spec.params.global_batch_size", "not one full step")


def test_validation_split_smaller_than_a_batch(tmp_path, tiny_model_dir, sft_parquet):
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, params={"val_fraction": 0.05, "global_batch_size": 8})
    refused(tmp_path, m, "$.spec.params.val_fraction", "fewer than one global batch")


def test_linear_schedule_is_refused_for_verl(tmp_path, tiny_model_dir, sft_parquet):
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, params={"optim": {"schedule": "linear"}})
    refused(tmp_path, m, "$.spec.params.optim.schedule", "cosine")


def test_unknown_verl_override_is_refused(tmp_path, tiny_model_dir, sft_parquet):
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, params={"verl": {"extra_overrides": ["data.nope=1"]}})
    refused(tmp_path, m, "$.spec.params", "verl rejected the overrides", "data.nope")


def test_verl_block_is_refused_for_native(tmp_path, tiny_model_dir, sft_parquet):
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, engine="native", params={"verl": {"param_offload": True}})
    refused(tmp_path, m, "$.spec.params.verl", "only to engine verl")


def test_native_block_is_refused_for_verl(tmp_path, tiny_model_dir, sft_parquet):
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, params={"native": {"grad_sync": "last_micro_batch"}})
    refused(tmp_path, m, "$.spec.params.native.grad_sync", "only to engine native")
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, params={"native": {"optimizer_offload": True}})
    refused(tmp_path, m, "$.spec.params.native.optimizer_offload", "only to engine native")


def test_model_folder_without_tokenizer(tmp_path, tiny_model_dir, sft_parquet):
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(tiny_model_dir / "config.json", model / "config.json")
    refused(tmp_path, sft_manifest(tmp_path, tiny_model_dir.parent / "nope", sft_parquet), "$.spec.inputs.model",
            "does not exist")
    refused(tmp_path, sft_manifest(tmp_path, model, sft_parquet), "$.spec.inputs.model", "no tokenizer files")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, model / name)
    refused(tmp_path, sft_manifest(tmp_path, model, sft_parquet), "$.spec.inputs.model", "no chat template")


def test_micro_batch_must_hold_max_length(tmp_path, tiny_model_dir, sft_parquet):
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, params={"max_length": 2048, "micro_batch_tokens": 1024})
    refused(tmp_path, m, "$.spec.params", "micro_batch_tokens")


def test_prompt_completion_layouts_are_accepted(tmp_path, tiny_model_dir):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    prompts, answers = [c[0]["content"] for c in GOOD], [c[1]["content"] for c in GOOD]
    pq.write_table(pa.table({"prompt": prompts, "completion": answers}), tmp_path / "pc.parquet")
    (tmp_path / "pc.jsonl").write_text("".join(json.dumps({"prompt": p, "completion": a}) + "\n"
                                               for p, a in zip(prompts, answers)))
    for data in (tmp_path / "pc.parquet", tmp_path / "pc.jsonl"):
        res = CliRunner().invoke(sft_cli, ["validate", "--manifest", str(sft_manifest(tmp_path, tiny_model_dir, data))])
        assert res.exit_code == 0, res.output
    assert not (tmp_path / "out").exists()
