"""The SFT dataset verl trains on: rows tokenized by the project's chat format, not by verl's per-turn renderer.

Why our own class (named to verl through ``data.custom_cls``): verl's ``MultiTurnSFTDataset`` renders every turn on
its own and concatenates them. With the Qwen3 template that drops the empty think block the template puts before
the last assistant answer, so verl's sanity check fails (verl reference §2.4) and, with
``ignore_input_ids_mismatch=True``, the model would be trained on ``<|im_start|>assistant\\nANSWER`` while
evaluation (thinking off) prompts it with ``<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n``. Setting
``enable_thinking_default=false`` does not help either: it changes the full rendering, not the per-turn one.

The project's decision (design §8) is that thinking is a study-level switch, off by default, the same for
collection, training and evaluation. ``stages.lm.chat.ChatFormat`` is the one implementation of it: with thinking
off the prompt (masked) ends with the template's empty think block and the trained tokens are exactly the answer
and ``<|im_end|>``; with thinking on the think block is part of the trained answer. This class hands verl those
same token ids and masks, so the verl and native engines train on identical sequences. The thinking mode is read
from ``data.enable_thinking_default`` (which the stage always sets, so the recorded config says what was trained);
``data.ignore_input_ids_mismatch`` stays false because nothing here concatenates per-turn renderings.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch.utils.data import Dataset

from stages.lm.chat import ChatFormat


def _plain(value: Any) -> Any:
    """pyarrow-backed cells (numpy arrays, dicts of arrays) as plain Python lists and dicts."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _thinking(config: Any) -> bool:
    value = config.get("enable_thinking_default", None)
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value) if value is not None else False


class ChatFormatSFTDataset(Dataset):
    """verl's dataset interface (constructor and item layout for ``pad_mode=no_padding``) over our chat format."""

    def __init__(self, parquet_files: str | list[str], tokenizer: Any, config: Any, processor: Any = None,
                 max_samples: int = -1) -> None:
        files = [parquet_files] if isinstance(parquet_files, str) else list(parquet_files)
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        if max_samples is not None and 0 < max_samples < len(frame):
            frame = frame.iloc[:max_samples]
        key = config.get("messages_key", "messages")
        self.messages = [_plain(m) for m in frame[key].tolist()]
        self.tokenizer = tokenizer
        self.max_length = int(config.get("max_length", 1024))
        self.truncation = config.get("truncation", "error")
        if config.get("pad_mode", "no_padding") != "no_padding":
            raise ValueError("ChatFormatSFTDataset supports only data.pad_mode=no_padding")
        self.chat = ChatFormat(thinking=_thinking(config))

    def __len__(self) -> int:
        return len(self.messages)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        encoded = self.chat.encode(self.tokenizer, self.messages[item])
        ids, mask = encoded.input_ids, encoded.assistant_mask
        if len(ids) > self.max_length:
            if self.truncation == "error":
                raise ValueError(f"row {item} is {len(ids)} tokens, over data.max_length={self.max_length}")
            ids, mask = ids[: self.max_length], mask[: self.max_length]
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "position_ids": torch.arange(len(ids), dtype=torch.long),
            "loss_mask": torch.tensor(mask, dtype=torch.long),
        }
