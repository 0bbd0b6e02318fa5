"""Attention over packed rows: each document sees only itself.

Why: packing several documents into one row is what makes short GSM8K-length rows fast, but plain SDPA over a
packed row would let a document attend to the ones before it (TRL's packing under SDPA does exactly that). This
registers one attention function with transformers (``lm_packed``) that takes the packed row's ``cu_seq_lens``:

- on a GPU, a variable-length flash kernel: ``flash_attn`` when installed, else PyTorch's own
  ``torch.nn.attention.varlen`` (flash-attention built into torch >= 2.10), which costs only the real
  per-document work;
- elsewhere (CPU, tests), SDPA with a block-diagonal causal mask built once per micro-batch.

Because the name is not one of transformers' mask kinds, transformers builds no mask of its own for it.
"""

from __future__ import annotations

import importlib.util
import inspect
from typing import Any

import torch
import torch.nn.functional as F

PACKED_ATTENTION = "lm_packed"


def _load_torch_varlen() -> tuple[Any, dict[str, Any], bool, bool]:
    """PyTorch's varlen flash kernel and what its signature offers (it changed between torch releases):
    the causal keyword (``is_causal`` in 2.10, ``window_size`` later), GQA and a ``scale`` argument."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None, {}, False, False
    params = inspect.signature(varlen_attn).parameters
    causal = {"window_size": (-1, 0)} if "window_size" in params else {"is_causal": True}
    return varlen_attn, causal, "enable_gqa" in params, "scale" in params


def _load_flash_attn() -> Any:
    if importlib.util.find_spec("flash_attn") is None:
        return None
    from flash_attn import flash_attn_varlen_func

    return flash_attn_varlen_func


# Resolved once at import, so compiled graphs see plain globals instead of lookups.
_TORCH_VARLEN, _TORCH_VARLEN_CAUSAL, _TORCH_VARLEN_GQA, _TORCH_VARLEN_SCALE = _load_torch_varlen()
_FLASH_ATTN_VARLEN = _load_flash_attn()


def varlen_kernel_name(device: torch.device) -> str:
    """Which kernel packed attention uses on ``device``: flash_attn, torch_varlen or sdpa_block_mask."""
    if device.type == "cuda" and _FLASH_ATTN_VARLEN is not None:
        return "flash_attn"
    if device.type == "cuda" and _TORCH_VARLEN is not None:
        return "torch_varlen"
    return "sdpa_block_mask"


def _varlen(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, max_len: int, scale: float,
            kernel: str) -> torch.Tensor:
    """q (T, H, D), k/v (T, Hkv, D) -> (T, H, D), causal within each document."""
    if kernel == "flash_attn":
        return _FLASH_ATTN_VARLEN(q, k, v, cu, cu, max_len, max_len, softmax_scale=scale, causal=True)
    kwargs: dict[str, Any] = dict(_TORCH_VARLEN_CAUSAL)
    if _TORCH_VARLEN_SCALE:
        kwargs["scale"] = scale
    elif abs(scale - q.shape[-1] ** -0.5) > 1e-12:
        q = q * (scale * q.shape[-1] ** 0.5)  # the kernel applies 1/sqrt(D); fold the difference into q
    if q.shape[1] != k.shape[1]:
        if _TORCH_VARLEN_GQA:
            kwargs["enable_gqa"] = True
        else:
            rep = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    return _TORCH_VARLEN(q, k, v, cu, cu, max_len, max_len, **kwargs)


def packed_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention hook: query (1, H, T, D), key/value (1, Hkv, T, D) -> (1, T, H, D)."""
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    cu = kwargs.get("cu_seq_lens_q")
    if cu is None:
        raise ValueError("lm_packed attention needs cu_seq_lens_q (run the model through stages.lm.engine)")
    kernel = kwargs.get("lm_attn_kernel", "sdpa_block_mask")
    if kernel != "sdpa_block_mask":
        dtype = query.dtype
        if dtype not in (torch.float16, torch.bfloat16):
            dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else torch.bfloat16
        q, k, v = (x[0].transpose(0, 1).to(dtype) for x in (query, key, value))
        out = _varlen(q, k, v, cu, int(kwargs["max_length_q"]), scale, kernel)
        return out[None].to(query.dtype), None
    mask = kwargs.get("lm_block_mask")
    if mask is None:
        raise ValueError("lm_packed attention on this device needs lm_block_mask")
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    out = F.scaled_dot_product_attention(query, key.to(query.dtype), value.to(query.dtype), attn_mask=mask,
                                         dropout_p=0.0, scale=scale)
    return out.transpose(1, 2).contiguous(), None


def register_packed_attention() -> str:
    """Register ``lm_packed`` with transformers (idempotent) and return its name."""
    from transformers import AttentionInterface

    AttentionInterface.register(PACKED_ATTENTION, packed_attention_forward)
    return PACKED_ATTENTION


def packed_attention_kwargs(batch: Any, device: torch.device) -> dict[str, Any]:
    """The keyword arguments the model forward must carry for ``lm_packed`` on ``device``."""
    kwargs: dict[str, Any] = {
        "cu_seq_lens_q": batch.cu_seqlens,
        "cu_seq_lens_k": batch.cu_seqlens,
        "max_length_q": batch.max_seqlen,
        "max_length_k": batch.max_seqlen,
        "lm_attn_kernel": varlen_kernel_name(device),
    }
    if kwargs["lm_attn_kernel"] == "sdpa_block_mask":
        kwargs["lm_block_mask"] = batch.block_causal_mask()
    return kwargs
