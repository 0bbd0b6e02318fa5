"""The refusal direction (Arditi et al., 2024): its extraction, selection, and the two interventions on it.

Why a direction: the paper shows that refusal in chat models is mediated by one direction of the residual stream.
It is the difference in means of the residual activations between harmful and harmless instructions, taken at
each layer and at each post-instruction token position (the chat template's tokens between the user's text and
the model's answer), which gives one candidate per (position, layer). Removing it from every layer's output
(directional ablation: ``x - (x . r) r`` for a unit ``r``) makes a model comply with harmful requests; adding it at
its layer (activation addition: ``x + r`` with the un-normalised difference) makes it refuse harmless ones. The
paper picks the candidate whose ablation lowers the refusal score of harmful prompts most, among those whose
addition raises it on harmless prompts, whose ablation barely moves the next-token distribution of harmless
prompts (KL < 0.1) and whose layer lies in the first 80% of the network.

For forgetting, the direction is extracted once from each SAFE baseline; each post-trained checkpoint is then
compared against it: the cosine of its own difference-in-means with the base's per layer, the projection of its
harmful-prompt activations onto the base direction, and its refusal rate with the base direction ablated or added.
This module holds the arithmetic and the hooks; the safety suite decides on prompts and budgets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

MAX_LAYER_SHARE = 0.8  # the paper's filter: candidates from the first 80% of the layers
MAX_KL = 0.1  # the paper's filter: ablation may move harmless next-token distributions by at most this


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def diff_in_means(harmful: torch.Tensor, harmless: torch.Tensor) -> torch.Tensor:
    """Candidates ``mean(harmful) - mean(harmless)`` over prompts: ``[n, ..., d]`` inputs give ``[..., d]``."""
    if harmful.shape[1:] != harmless.shape[1:]:
        raise ValueError(f"activation shapes differ: {tuple(harmful.shape)} vs {tuple(harmless.shape)}")
    return harmful.double().mean(0) - harmless.double().mean(0)


def ablate(x: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """``x`` with its component along ``direction`` removed (any leading shape, last dim d)."""
    r = unit(direction.to(x.dtype))
    return x - (x @ r).unsqueeze(-1) * r


def cosine_per_layer(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Cosine similarity of two ``[layers, d]`` direction stacks, layer by layer."""
    return torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1).tolist()


def mean_projection(acts: torch.Tensor, direction: torch.Tensor) -> float:
    """Mean scalar projection of ``[n, d]`` activations onto the unit direction."""
    return float((acts.double() @ unit(direction.double())).mean())


def refusal_score(logits: torch.Tensor, refusal_token_ids: Sequence[int]) -> torch.Tensor:
    """The paper's refusal metric per prompt: log-odds of the first answer token being a refusal token
    (``log p - log(1 - p)`` with ``p`` the probability mass on ``refusal_token_ids``), from ``[n, vocab]`` logits."""
    probs = torch.softmax(logits.double(), dim=-1)
    p = probs[:, list(refusal_token_ids)].sum(-1).clamp(1e-12, 1 - 1e-12)
    return torch.log(p) - torch.log1p(-p)


def next_token_kl(base_logits: torch.Tensor, new_logits: torch.Tensor) -> float:
    """Mean KL(base || new) of next-token distributions, from ``[n, vocab]`` logits."""
    lp, lq = torch.log_softmax(base_logits.double(), -1), torch.log_softmax(new_logits.double(), -1)
    return float((lp.exp() * (lp - lq)).sum(-1).mean())


@dataclass(frozen=True)
class Candidate:
    position: int  # index among the post-instruction positions (negative: counted from the prompt's end)
    layer: int
    bypass_score: float  # mean refusal score of harmful prompts with the direction ablated (lower is better)
    induce_score: float  # mean refusal score of harmless prompts with the direction added (must be > 0)
    kl_score: float  # KL of harmless next-token distributions under ablation (must be < MAX_KL)


def select(candidates: Sequence[Candidate], num_layers: int, induce_threshold: float = 0.0, max_kl: float = MAX_KL,
           max_layer_share: float = MAX_LAYER_SHARE) -> Candidate:
    """The paper's choice: least bypass score among candidates that pass the three filters."""
    kept = [c for c in candidates
            if c.induce_score > induce_threshold and c.kl_score < max_kl and c.layer < max_layer_share * num_layers]
    if not kept:
        raise ValueError(f"no candidate direction passes the filters (induce > {induce_threshold}, KL < {max_kl}, "
                         f"layer < {max_layer_share:.0%} of {num_layers}) among {len(candidates)}")
    return min(kept, key=lambda c: c.bypass_score)


def decoder_layers(model) -> Sequence[torch.nn.Module]:
    """The decoder blocks of a Hugging Face causal LM (Qwen3, Llama: ``model.model.layers``)."""
    inner = getattr(model, "model", model)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__} has no decoder layers at model.model.layers")
    return layers


def _map_output(fn: Callable[[torch.Tensor], torch.Tensor]):
    def hook(_module, _args, output):
        if isinstance(output, tuple):
            return (fn(output[0]), *output[1:])
        return fn(output)
    return hook


@contextmanager
def ablation(model, direction: torch.Tensor) -> Iterator[None]:
    """Directional ablation at every layer and position: the embeddings' output, every decoder block's output and,
    inside each block, the attention's and the MLP's outputs (the paper's "every component that writes to the
    residual stream") lose their component along ``direction``, so no layer, nor a block's MLP, reads it."""
    inner = getattr(model, "model", model)
    blocks = decoder_layers(model)
    parts = [getattr(b, name) for b in blocks for name in ("self_attn", "mlp") if hasattr(b, name)]
    modules = [inner.embed_tokens, *blocks, *parts]
    weight = inner.embed_tokens.weight
    r = unit(direction.to(device=weight.device, dtype=torch.float32)).to(weight.dtype)
    handles = [m.register_forward_hook(_map_output(lambda x: ablate(x, r))) for m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def addition(model, direction: torch.Tensor, layer: int, coeff: float = 1.0) -> Iterator[None]:
    """Activation addition: ``coeff * direction`` (un-normalised) added to the input of block ``layer`` at every
    position (the residual stream that block reads)."""
    block = decoder_layers(model)[layer]

    def pre_hook(_module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        hidden = hidden + coeff * direction.to(hidden.dtype).to(hidden.device)
        if args:
            return (hidden, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": hidden}

    handle = block.register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def residuals(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: int) -> torch.Tensor:
    """The residual stream each block reads (its input, after any intervention hooks registered before this call),
    at the last ``positions`` tokens of each left-padded prompt: ``[n, layers, positions, d]`` in float32. Captured
    with pre-hooks, so only these positions leave the device and the result does not depend on how a transformers
    version records ``hidden_states``."""
    blocks = decoder_layers(model)
    taken: list[torch.Tensor | None] = [None] * len(blocks)

    def capture(i: int):
        def pre_hook(_module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            taken[i] = hidden[:, -positions:, :].float().cpu()
        return pre_hook

    handles = [b.register_forward_pre_hook(capture(i), with_kwargs=True) for i, b in enumerate(blocks)]
    try:
        model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return torch.stack(taken, dim=1)


@torch.no_grad()
def last_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Next-token logits after each (left-padded) prompt, ``[n, vocab]``."""
    return model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, -1, :].float().cpu()
