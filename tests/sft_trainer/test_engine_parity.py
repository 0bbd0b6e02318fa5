"""The peer check the study's fairness rests on: on the same batch, the native engine and verl's SFT trainer give
the same first-step loss (same rows, same trained tokens, same token-mean) and the same loss after one update, on
the CPU with the tiny model (measured: 11.9121118 vs 11.9121122, then 11.558980 vs 11.558988).

Why a batch of every row: the two engines shuffle with different generators, so only a global batch that is the
whole training set is the same batch for both whatever the order; one micro-batch holds it on both (the logged loss
is then the token mean over the batch on both sides, not a mean of micro-batch means). The GPU run of the same
comparison (tokens/s, MFU, memory) is ``bench/gpu/verl_paths.py sft``, which uses the same trick."""

from __future__ import annotations

import pytest

from stages.lm.verl.config import verl_installed
from tests.sft_trainer.conftest import gsm8k_conversations, metrics, run_stage, sft_manifest, write_messages_parquet

pytestmark = pytest.mark.skipif(not verl_installed(), reason="verl is not installed")

ROWS = 8


def test_native_and_verl_give_the_same_first_step_loss_on_the_same_batch(tmp_path, tiny_model_dir):
    data = write_messages_parquet(tmp_path / "rows.parquet", gsm8k_conversations(ROWS))
    params = {"global_batch_size": ROWS, "micro_batch_tokens": 8192, "max_length": 512, "val_fraction": 0.0,
              "max_steps": 2, "epochs": 2, "save_every_steps": 1000, "optim": {"lr": 2e-3, "warmup_ratio": 0.0}}
    first, second = {}, {}
    for engine in ("native", "verl"):
        work = tmp_path / engine
        work.mkdir()
        m = sft_manifest(work, tiny_model_dir, data, engine=engine, params=params, run_id=f"tiny.parity.{engine}")
        r = run_stage(m)
        assert r.returncode == 0, r.stderr[-3000:]
        rows = metrics(work / "out")
        assert [x["step"] for x in rows] == [1, 2], rows
        first[engine] = rows[0]
        second[engine] = rows[1]["loss"]
    assert first["native"]["loss"] == pytest.approx(first["verl"]["loss"], rel=1e-4), first
    # the same trained tokens: both count the answer and <|im_end|>, not the prompt or the empty think block
    assert first["native"]["tokens"] == first["verl"]["tokens"], first
    # and one AdamW update later (same learning rate, betas, weight decay, clipping) they still agree
    assert second["native"] == pytest.approx(second["verl"], rel=1e-4), second
