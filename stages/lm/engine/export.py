"""Export the trained model as a plain Hugging Face folder that vLLM, lm-eval and transformers load.

Why plain: downstream stages (evaluator, collector, the next SPIN iteration) load a model folder and nothing else.
So FSDP shards are gathered into a full state dict, LoRA adapters are merged into the base weights
(W + B A * alpha / r), the attention setting is reset to the one used for generation, and weights are written in
the source checkpoint's dtype (bf16 for real Qwen3 models). The folder is built beside the destination and
renamed into place, so a half-written export never looks finished.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from stages.lm.engine.distributed import DistInfo, barrier
from stages.lm.engine.model import PackedCausalLM, causal_lm_of, set_attention


def full_state_dict(module: PackedCausalLM) -> dict[str, torch.Tensor]:
    """Gather the full (unsharded) state dict of the wrapped model on every rank, on CPU."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    sd = get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {k.removeprefix("model."): v for k, v in sd.items()}


def merge_lora(state: dict[str, torch.Tensor], scaling: float) -> dict[str, torch.Tensor]:
    """Fold peft LoRA weights into their base layers and drop the peft key prefixes."""
    merged: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if ".lora_A." in key or ".lora_B." in key:
            continue
        name = key
        name = name.removeprefix("base_model.model.")
        if ".base_layer." in name:
            stem = key.rsplit(".base_layer.", 1)[0]
            a = next((v for k, v in state.items() if k.startswith(stem + ".lora_A.")), None)
            b = next((v for k, v in state.items() if k.startswith(stem + ".lora_B.")), None)
            if key.endswith(".weight") and a is not None and b is not None:
                value = (value.float() + (b.float() @ a.float()) * scaling).to(value.dtype)
            name = name.replace(".base_layer.", ".")
        merged[name] = value
    return merged


def export_hf(module: PackedCausalLM, dest: str | Path, info: DistInfo, *, tokenizer: Any = None,
              dtype: torch.dtype | None = None) -> Path:
    """Write the model (and tokenizer) to ``dest`` as a Hugging Face folder; every rank must call this."""
    state = full_state_dict(module)
    lora_scaling = None
    peft_config = getattr(module.model, "peft_config", None)
    if peft_config:
        cfg = next(iter(peft_config.values()))
        lora_scaling = cfg.lora_alpha / cfg.r
        state = merge_lora(state, lora_scaling)
    out = Path(dest)
    if info.is_main:
        lm = causal_lm_of(module.model)
        if getattr(lm.config, "tie_word_embeddings", False):  # gathered shards untie the copies: keep one
            head = lm.get_output_embeddings()
            head_name = next((n for n, m in lm.named_modules() if m is head), None)
            if head_name is not None:
                state.pop(f"{head_name}.weight", None)
        target = dtype or getattr(lm.config, "dtype", None) or torch.float32
        if isinstance(target, str):
            target = getattr(torch, target)
        state = {k: v.to(target) if v.is_floating_point() else v for k, v in state.items()}
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
        tmp.chmod(0o755)
        previous = lm.config._attn_implementation
        set_attention(module.model, module.generation_attn)
        old_dtype = getattr(lm.config, "dtype", None)
        try:
            lm.config.dtype = target
            lm.save_pretrained(str(tmp), state_dict=state, safe_serialization=True)
            if tokenizer is not None:
                tokenizer.save_pretrained(str(tmp))
            if out.exists():
                shutil.rmtree(out)
            os.replace(tmp, out)
        finally:
            lm.config.dtype = old_dtype
            set_attention(module.model, previous)
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    barrier(info)
    return out
