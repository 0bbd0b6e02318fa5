"""All three modes on each domain's fixture data, with outputs checked by verl's own dataset readers."""

from __future__ import annotations

import json

import pytest

from tests.collector.conftest import record_of, records, run_inproc, write_manifest


def _verl_sft(path, tiny):
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    tok = AutoTokenizer.from_pretrained(str(tiny))
    cfg = OmegaConf.create({"max_length": 2048, "truncation": "right", "messages_key": "messages",
                            "ignore_input_ids_mismatch": True})
    return MultiTurnSFTDataset(parquet_files=str(path), tokenizer=tok, config=cfg)


def _verl_rl(path, tiny):
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    tok = AutoTokenizer.from_pretrained(str(tiny))
    cfg = OmegaConf.create({"max_prompt_length": 1024, "prompt_key": "prompt", "filter_overlong_prompts": True,
                            "return_raw_chat": True, "truncation": "error"})
    return RLHFDataset(data_files=str(path), tokenizer=tok, config=cfg)


@pytest.mark.parametrize("domain", ["math", "code", "qa"])
def test_ground_truth_mode(tmp_path, fx, domain):
    res = run_inproc(write_manifest(tmp_path, fx, domain, "ground-truth", model=False, max_items=6))
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    recs = records(out)
    assert len(recs) == 6 and all(r["response"] for r in recs)
    assert all(r["correct"] for r in recs), [r["verdict_details"] for r in recs if not r["correct"]]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["accuracy"] == 1.0 and sum(stats["target_kinds"].values()) == 6
    rec = record_of(out)
    assert set(rec["outputs"]) >= {"trajectories", "sft", "sft_jsonl", "stats"}
    ds = _verl_sft(out / "sft.parquet", fx / "tiny-qwen3")
    assert len(ds) == 6
    sample = ds[0]
    assert int(sample["loss_mask"].sum()) > 0
    first = json.loads((out / "sft.jsonl").read_text().splitlines()[0])
    assert first["prompt"][-1]["role"] == "user" and first["completion"][0]["role"] == "assistant"


@pytest.mark.parametrize("domain", ["math", "code", "qa"])
def test_prompts_mode(tmp_path, fx, domain):
    res = run_inproc(write_manifest(tmp_path, fx, domain, "prompts", model=False, max_items=5))
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    ds = _verl_rl(out / "prompts.parquet", fx / "tiny-qwen3")
    assert len(ds) == 5
    row = ds[0]
    assert row["data_source"] == write_manifest.__globals__["DATASETS"][domain][0]
    assert json.loads(row["reward_model"]["ground_truth"])
    from stages.envs.verl_reward import compute_score

    assert compute_score(row["data_source"], "no answer here", row["reward_model"]["ground_truth"])["score"] == 0.0
    assert len((out / "prompts.jsonl").read_text().splitlines()) == 5


@pytest.mark.parametrize("domain", ["math", "code", "qa"])
def test_generate_mode(tmp_path, fx, domain):
    res = run_inproc(write_manifest(tmp_path, fx, domain, "generate", max_items=2))
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    recs = records(out)
    assert len(recs) == 4  # 2 items x 2 samples
    for r in recs:
        assert r["source"] == "model" and r["model_id"] == "tiny-qwen3"
        assert r["finish_reason"] in ("stop", "length") and r["response_tokens"] <= 8
        assert r["verdict"] in ("pass", "fail", "timeout", "error") and r["reward"] is not None
        assert r["prompt_tokens"] > 0 and r["sampling"]["n"] == 2
    stats = json.loads((out / "stats.json").read_text())
    assert set(stats["pass_at_k"]) == {"1", "2"} and stats["records"] == 4
    assert record_of(out)["summary"]["records"] == 4


def test_sft_rows_hold_only_correct_responses_unless_told(tmp_path, fx):
    res = run_inproc(write_manifest(tmp_path, fx, "math", "generate", out="strict", name="a.json", max_items=2))
    assert res.exit_code == 0, res.output
    strict = json.loads((tmp_path / "strict" / "stats.json").read_text())
    assert strict["sft_rows"] == sum(1 for r in records(tmp_path / "strict") if r["correct"])  # tiny model: 0
    assert strict["sft_correct_only"] is True
    res = run_inproc(write_manifest(tmp_path, fx, "math", "generate", out="loose", name="b.json", max_items=2,
                                    sft_correct_only=False))
    assert res.exit_code == 0, res.output
    loose = json.loads((tmp_path / "loose" / "stats.json").read_text())
    assert loose["sft_rows"] == 2 and loose["sft_correct_only"] is False  # first sample of each item
