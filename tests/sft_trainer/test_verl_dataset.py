"""What SFT teaches about think tags: with thinking off, the prompt ends with Qwen3's empty think block and the
trained tokens are exactly the answer and ``<|im_end|>``, the same ids the native engine trains on; verl's stock
per-turn dataset would not give that (it trips its own sanity check on Qwen3)."""

from __future__ import annotations

import pytest

from stages.lm.verl.config import verl_installed
from tests.sft_trainer.conftest import gsm8k_conversations, write_messages_parquet

pytestmark = pytest.mark.skipif(not verl_installed(), reason="verl is not installed")


def data_config(**kw):
    from omegaconf import OmegaConf

    base = {"messages_key": "messages", "max_length": 512, "truncation": "error", "pad_mode": "no_padding",
            "enable_thinking_default": False, "ignore_input_ids_mismatch": False, "apply_chat_template_kwargs": {}}
    base.update(kw)
    return OmegaConf.create(base)


@pytest.fixture(scope="module")
def rows_and_tokenizer(tmp_path_factory, tiny_model_dir):
    from transformers import AutoTokenizer

    convs = gsm8k_conversations(3)
    path = write_messages_parquet(tmp_path_factory.mktemp("ds") / "rows.parquet", convs)
    return convs, path, AutoTokenizer.from_pretrained(str(tiny_model_dir), local_files_only=True)


@pytest.mark.parametrize("thinking", [False, True])
def test_items_are_the_project_chat_format(rows_and_tokenizer, thinking):
    from stages.lm.chat import ChatFormat
    from stages.sft_trainer.verl_dataset import ChatFormatSFTDataset

    convs, path, tok = rows_and_tokenizer
    ds = ChatFormatSFTDataset(str(path), tok, data_config(enable_thinking_default=thinking))
    assert len(ds) == 3
    item = ds[0]
    expected = ChatFormat(thinking=thinking).encode(tok, convs[0])
    assert item["input_ids"].tolist() == expected.input_ids
    assert item["loss_mask"].tolist() == [int(m) for m in expected.assistant_mask]
    assert item["position_ids"].tolist() == list(range(len(expected.input_ids)))
    mask = item["loss_mask"].bool()
    trained = tok.decode(item["input_ids"][mask])
    prompt = tok.decode(item["input_ids"][~mask])
    if not thinking:
        assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
        assert trained == convs[0][1]["content"] + "<|im_end|>"
    else:
        assert prompt.endswith("<|im_start|>assistant\n")
        assert trained.endswith(convs[0][1]["content"] + "<|im_end|>")


def test_truncation(rows_and_tokenizer):
    from stages.sft_trainer.verl_dataset import ChatFormatSFTDataset

    _, path, tok = rows_and_tokenizer
    with pytest.raises(ValueError, match="over data.max_length"):
        ChatFormatSFTDataset(str(path), tok, data_config(max_length=20))[0]
    cut = ChatFormatSFTDataset(str(path), tok, data_config(max_length=60, truncation="right"))[0]
    assert len(cut["input_ids"]) == 60 == len(cut["loss_mask"])


def test_verls_stock_dataset_trips_on_qwen3_think_tags(rows_and_tokenizer):
    """The trap our dataset avoids: per-turn rendering loses the think block the full rendering has."""
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    _, path, tok = rows_and_tokenizer
    stock = MultiTurnSFTDataset(str(path), tok, data_config())
    with pytest.raises(AssertionError, match="ignore_input_ids_mismatch"):
        stock[0]
    lenient = MultiTurnSFTDataset(str(path), tok, data_config(ignore_input_ids_mismatch=True))[0]
    trained_prompt = tok.decode(lenient["input_ids"][: int(lenient["loss_mask"].argmax())])
    assert "<think>" not in trained_prompt  # what the model would have been taught without our dataset
