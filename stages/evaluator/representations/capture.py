"""Residual-stream activations of a causal LM, captured with forward hooks and pooled per text on the device.

Why hooks and pooling: the suite needs one vector per text and layer (n × d per layer), never every token's hidden
state. A forward hook on the embedding and on each decoder block pools that block's output (the residual stream
after it) as soon as it is computed — the mean over the text's tokens or its last token, with the padding masked —
into a float32 buffer on the device; the full (batch × tokens × d) tensor is dropped by the next block. Only the
backbone runs (no LM head: no vocabulary-sized logits). Texts are sorted by length and right-padded in batches so
little compute goes to padding; the result is put back in the input order.

Layer 0 is the embedding output and layer i the output of block i, so a model with L blocks has L + 1 layers. Mean
pooling leaves out the first token of texts longer than one token: in Qwen3 (and most LLMs) the first position
carries "massive activations" (an attention sink) that would otherwise dominate every mean and every CKA.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def tokenise(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    """Token ids of each text (no special tokens), cut to ``max_tokens``; an empty text is an error."""
    ids = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=max_tokens)["input_ids"]
    empty = [i for i, seq in enumerate(ids) if not seq]
    if empty:
        raise ValueError(f"{len(empty)} probe texts tokenise to nothing (first: {texts[empty[0]]!r})")
    return [list(seq) for seq in ids]


def backbone_of(model: Any) -> tuple[Any, Any, list[Any]]:
    """(backbone without the LM head, its embedding module, its decoder blocks) of a Hugging Face causal LM."""
    backbone = getattr(model, getattr(model, "base_model_prefix", "model"), model)
    blocks = getattr(backbone, "layers", None)
    if blocks is None:
        raise ValueError(f"{type(model).__name__} has no decoder blocks at .{model.base_model_prefix}.layers")
    return backbone, backbone.get_input_embeddings(), list(blocks)


def _pool(hidden: Any, mask: Any, lengths: Any, pooling: str) -> Any:
    import torch

    h = hidden.float()
    if pooling == "last":
        return h[torch.arange(h.shape[0], device=h.device), lengths - 1]
    w = mask.to(h.dtype).unsqueeze(-1)
    return (h * w).sum(dim=1) / w.sum(dim=1)


def capture(model: Any, sequences: Sequence[Sequence[int]], pooling: str, batch_size: int) -> np.ndarray:
    """Pooled activations, shape (layers + 1, len(sequences), hidden), float32, in the order of ``sequences``."""
    import torch

    backbone, embed, blocks = backbone_of(model)
    device = embed.weight.device
    n, width = len(sequences), embed.weight.shape[1]
    out = torch.zeros(len(blocks) + 1, n, width, dtype=torch.float32, device=device)
    state: dict[str, Any] = {}

    def hook(layer: int):
        def fn(_module: Any, _args: Any, output: Any) -> None:
            h = output[0] if isinstance(output, tuple) else output
            out[layer, state["rows"]] = _pool(h, state["mask"], state["lengths"], pooling)
        return fn

    handles = [embed.register_forward_hook(hook(0))]
    handles += [b.register_forward_hook(hook(i + 1)) for i, b in enumerate(blocks)]
    order = sorted(range(n), key=lambda i: -len(sequences[i]))
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]
                longest = len(sequences[rows[0]])
                ids = torch.zeros(len(rows), longest, dtype=torch.long)
                attention = torch.zeros(len(rows), longest, dtype=torch.long)
                for j, i in enumerate(rows):
                    ids[j, : len(sequences[i])] = torch.as_tensor(sequences[i])
                    attention[j, : len(sequences[i])] = 1
                lengths = attention.sum(dim=1)
                pooled = attention.clone()
                pooled[lengths > 1, 0] = 0  # the attention sink stays out of mean pooling
                state.update(rows=torch.as_tensor(rows, device=device), mask=pooled.to(device),
                             lengths=lengths.to(device))
                backbone(input_ids=ids.to(device), attention_mask=attention.to(device), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return out.cpu().numpy()
