"""Per-token log-probabilities of the targets, computed in chunks so the vocabulary never fills memory.

Why: with Qwen3's 151,936-token vocabulary the logits of a 16k-token micro-batch are 10 GB in fp32, more than the
rest of the activations together; they are what limits batch size. Every loss here needs only log p(target), so
this computes, chunk by chunk, ``logits = h W^T`` (in the compute dtype), a float32 log-sum-exp and the target
logit, and keeps no float32 vocabulary-sized tensor: backward applies d logp / d logits = g * (onehot - softmax)
chunk by chunk, from logits kept in the compute dtype (GPU: bf16, 2 bytes a logit) or recomputed (one extra
lm-head matmul, no memory).
"""

from __future__ import annotations

from typing import Any

import torch


def _upcast(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _chunk_forward(h: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    raw = h @ w.t()
    logits = _upcast(raw)
    lse = torch.logsumexp(logits, dim=-1)
    picked = logits.gather(1, t[:, None]).squeeze(1)
    return picked - lse, lse, raw


def _chunk_backward(
    h: torch.Tensor, w: torch.Tensor, t: torch.Tensor, lse: torch.Tensor, g: torch.Tensor, raw: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = _upcast(h @ w.t() if raw is None else raw)
    probs = torch.exp(logits - lse[:, None])
    dlogits = -g[:, None] * probs
    dlogits.scatter_add_(1, t[:, None], g[:, None])
    dlogits = dlogits.to(h.dtype)
    return dlogits @ w, dlogits.t() @ h


_compiled: dict[str, Any] = {}


def _kernels(compiled: bool) -> tuple[Any, Any]:
    if not compiled:
        return _chunk_forward, _chunk_backward
    if not _compiled:
        _compiled["fwd"] = torch.compile(_chunk_forward, dynamic=False)
        _compiled["bwd"] = torch.compile(_chunk_backward, dynamic=False)
    return _compiled["fwd"], _compiled["bwd"]


class _ChunkedTokenLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                chunk: int, compute_dtype: torch.dtype, compiled: bool, keep_logits: bool) -> torch.Tensor:
        fwd, _ = _kernels(compiled)
        w = weight.to(compute_dtype)
        h = hidden.to(compute_dtype)
        outs, lses, raws = [], [], []
        for start in range(0, h.shape[0], chunk):
            lp, lse, raw = fwd(h[start:start + chunk], w, targets[start:start + chunk])
            outs.append(lp)
            lses.append(lse)
            raws.append(raw if keep_logits else None)
        ctx.save_for_backward(hidden, weight, targets, torch.cat(lses))
        ctx.raws = raws
        ctx.chunk, ctx.compute_dtype, ctx.compiled = chunk, compute_dtype, compiled
        return torch.cat(outs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        hidden, weight, targets, lse = ctx.saved_tensors
        _, bwd = _kernels(ctx.compiled)
        w = weight.to(ctx.compute_dtype)
        h = hidden.to(ctx.compute_dtype)
        grad = _upcast(grad).contiguous()
        grad_h = torch.empty_like(h)
        grad_w = torch.zeros(weight.shape, dtype=torch.promote_types(weight.dtype, torch.float32), device=weight.device)
        for i, start in enumerate(range(0, h.shape[0], ctx.chunk)):
            sl = slice(start, start + ctx.chunk)
            raw, ctx.raws[i] = ctx.raws[i], None
            gh, gw = bwd(h[sl], w, targets[sl], lse[sl], grad[sl], raw)
            del raw
            grad_h[sl] = gh
            grad_w += gw
        return grad_h.to(hidden.dtype), grad_w.to(weight.dtype), None, None, None, None, None


def token_logprobs(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *, chunk: int = 4096,
                   compiled: bool = False, keep_logits: bool = False) -> torch.Tensor:
    """log p(targets[i] | hidden[i]) for hidden (T, d) and an lm-head weight (V, d); float32, shape (T,).

    The matmuls run in the autocast dtype when autocast is on (bf16 on GPU), else in the weight's dtype.
    ``keep_logits`` keeps each chunk's logits (in that dtype) for backward instead of recomputing them: one
    lm-head matmul less per chunk for T x V x 2 bytes of memory (2.5 GB for 8k tokens in bf16).
    """
    if hidden.dim() != 2 or targets.dim() != 1 or hidden.shape[0] != targets.shape[0]:
        raise ValueError(f"hidden must be (T, d) and targets (T,), got {tuple(hidden.shape)} and {tuple(targets.shape)}")
    device_type = hidden.device.type
    if torch.is_autocast_enabled(device_type):
        compute_dtype = torch.get_autocast_dtype(device_type)
    else:
        compute_dtype = weight.dtype
    with torch.autocast(device_type, enabled=False):
        return _ChunkedTokenLogprobs.apply(hidden, weight, targets, chunk, compute_dtype, compiled,
                                           keep_logits and hidden.requires_grad)
