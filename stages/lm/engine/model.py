"""The trained module: a Hugging Face causal LM that returns log p(target) for a packed micro-batch.

Why a wrapper: every loss needs only per-token log-probabilities, never full logits, so the forward runs the
transformer body over the packed row and then the chunked log-prob head (``logprobs.py``). Wrapping it in one
module also gives FSDP2 a root whose forward covers the embedding, the final norm and the (tied) lm-head, so their
parameters are gathered for exactly as long as they are used. LoRA (peft) is looked through transparently.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from stages.lm.engine.attention import packed_attention_kwargs, register_packed_attention
from stages.lm.engine.logprobs import token_logprobs
from stages.lm.engine.packing import PackedBatch


def causal_lm_of(model: Any) -> Any:
    """The ``*ForCausalLM`` module inside ``model`` (unwrapping peft)."""
    if hasattr(model, "get_base_model"):
        return model.get_base_model()
    return model


def set_attention(model: Any, name: str) -> None:
    lm = causal_lm_of(model)
    if hasattr(lm, "set_attn_implementation"):
        try:
            lm.set_attn_implementation(name)
            return
        except (ValueError, KeyError, AttributeError, TypeError):
            pass
    lm.config._attn_implementation = name


class PackedCausalLM(nn.Module):
    """``forward(batch) -> (T,)`` float32 log-probabilities of ``batch.targets``."""

    def __init__(self, model: Any, *, logprob_chunk_tokens: int = 4096, compile_head: bool = False,
                 keep_logits: bool = False) -> None:
        super().__init__()
        self.model = model
        self.chunk = logprob_chunk_tokens
        self.compile_head = compile_head
        self.keep_logits = keep_logits
        self.generation_attn = causal_lm_of(model).config._attn_implementation or "sdpa"
        set_attention(model, register_packed_attention())

    @property
    def causal_lm(self) -> Any:
        return causal_lm_of(self.model)

    @contextlib.contextmanager
    def standard_attention(self) -> Iterator[Any]:
        """Temporarily give the wrapped model its ordinary attention, to call it like any transformers model
        (``model(input_ids).logits``, ``generate``); inside, it cannot take packed rows."""
        set_attention(self.model, self.generation_attn)
        try:
            yield self.model
        finally:
            set_attention(self.model, "lm_packed")

    @property
    def decoder_layers(self) -> list[nn.Module]:
        return list(self.causal_lm.model.layers)

    def forward(self, batch: PackedBatch) -> torch.Tensor:
        lm = self.causal_lm
        device = batch.input_ids.device
        # the document count varies from micro-batch to micro-batch: one compiled graph serves all of them
        # (static shapes stay static; only cu_seqlens' length is symbolic, and only the attention op reads it)
        torch._dynamo.maybe_mark_dynamic(batch.cu_seqlens, 0)
        out = lm.model(
            input_ids=batch.input_ids[None],
            position_ids=batch.position_ids[None],
            use_cache=False,
            **packed_attention_kwargs(batch, device),
        )
        hidden = out.last_hidden_state[0]
        head = lm.get_output_embeddings()
        if getattr(head, "bias", None) is not None:
            raise NotImplementedError("not implemented yet: lm heads with a bias")
        return token_logprobs(hidden, head.weight, batch.targets, chunk=self.chunk, compiled=self.compile_head,
                              keep_logits=self.keep_logits)
