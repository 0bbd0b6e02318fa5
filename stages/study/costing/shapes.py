"""Model shapes: layer count, widths and vocabulary, from a model folder's ``config.json`` or a table by size label.

Why both: on a login node after staging the folder exists and its ``config.json`` is the truth (a rehearsal's tiny
stand-in included); when planning for another machine the folder is absent and the study's size label (``4B``)
names a row of the table below. The table is the Hugging Face ``config.json`` of each checkpoint (the ``-Base`` and
post-trained Qwen3 checkpoints of one size share a shape); its parameter counts are checked against the published
sizes in the tests, and the 1.7B row against the native engine bench's model (1,720,574,976 parameters,
``bench/results/native_engine.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelShape:
    name: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool  # lm head shares the embedding matrix
    qk_norm: bool = True  # Qwen3 normalises q and k per head; Llama does not

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def layer_params(self) -> int:
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        norms = 2 * h + (2 * self.head_dim if self.qk_norm else 0)
        return h * q + 2 * h * kv + q * h + 3 * h * i + norms

    @property
    def root_params(self) -> int:
        """Parameters outside the decoder layers: embedding, untied lm head, final norm (FSDP's root unit)."""
        return self.vocab * self.hidden * (1 if self.tied else 2) + self.hidden

    @property
    def params(self) -> int:
        return self.layers * self.layer_params + self.root_params

    def lora_params(self, rank: int, targets: str = "all-linear") -> int:
        """Trainable LoRA parameters: rank x (in + out) per adapted projection per layer (peft's A and B)."""
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        dims = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
        names = list(dims) if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
        return self.layers * sum(rank * sum(dims[n]) for n in names if n in dims)

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        """KV cache of one token over all layers (keys and values, bf16)."""
        return 2 * self.layers * self.kv_dim * dtype_bytes


def _qwen3(name: str, layers: int, hidden: int, intermediate: int, heads: int, tied: bool) -> ModelShape:
    return ModelShape(name, layers, hidden, intermediate, heads, 8, 128, 151936, tied)


# size label -> shape, from each checkpoint's config.json on the Hugging Face hub (Qwen/Qwen3-<size>[-Base],
# meta-llama/Llama-3.1-70B-Instruct). 1.7B and 4B tie the lm head to the embedding; 8B and up do not.
SHAPES: dict[str, ModelShape] = {
    "1.7B": _qwen3("Qwen3-1.7B", 28, 2048, 6144, 16, True),
    "4B": _qwen3("Qwen3-4B", 36, 2560, 9728, 32, True),
    "8B": _qwen3("Qwen3-8B", 36, 4096, 12288, 32, False),
    "14B": _qwen3("Qwen3-14B", 40, 5120, 17408, 40, False),
    "32B": _qwen3("Qwen3-32B", 64, 5120, 25600, 64, False),
    "70B": ModelShape("Llama-3.1-70B", 80, 8192, 28672, 64, 8, 128, 128256, False, qk_norm=False),
}


def shape_from_config(path: Path) -> ModelShape:
    """The shape in a Hugging Face ``config.json`` (Qwen3 and Llama layouts)."""
    cfg = json.loads(path.read_text(encoding="utf-8"))
    heads = int(cfg["num_attention_heads"])
    hidden = int(cfg["hidden_size"])
    return ModelShape(
        name=str(cfg.get("_name_or_path") or path.parent.name),
        layers=int(cfg["num_hidden_layers"]),
        hidden=hidden,
        intermediate=int(cfg["intermediate_size"]),
        heads=heads,
        kv_heads=int(cfg.get("num_key_value_heads") or heads),
        head_dim=int(cfg.get("head_dim") or hidden // heads),
        vocab=int(cfg["vocab_size"]),
        tied=bool(cfg.get("tie_word_embeddings", False)),
        qk_norm=str(cfg.get("model_type", "qwen3")).startswith("qwen3"),
    )


def shape_for(size: str | None, folder: Path | None = None) -> ModelShape | None:
    """The folder's ``config.json`` when it exists, else the table's row for the size label; None if neither."""
    if folder is not None:
        cfg = folder / "config.json"
        try:
            if cfg.is_file():
                return shape_from_config(cfg)
        except (OSError, ValueError, KeyError):
            pass
    return SHAPES.get(size or "")
