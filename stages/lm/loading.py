"""Load a model and tokenizer from a local folder, the same way for every stage.

Why: loading decides precision, device, attention kernel and LoRA, and each of these changes what a method learns
(or how fast). Doing it in one place means the six methods start from identical footing. Models are always local
folders: nothing here ever reaches the Hugging Face hub (``local_files_only=True``), because compute nodes have no
internet and a silent download would make runs irreproducible.
"""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stages.lm.errors import LMInputError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}


@dataclass(frozen=True)
class LoraSettings:
    """One LoRA setting, applied the same way to every method when a study turns LoRA on."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: tuple[str, ...] = field(default=DEFAULT_LORA_TARGETS)

    def __post_init__(self) -> None:
        if self.r <= 0 or self.alpha <= 0:
            raise LMInputError(f"LoRA r and alpha must be positive, got r={self.r} alpha={self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise LMInputError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise LMInputError("LoRA target_modules must name at least one module")


def check_model_dir(path: str | Path) -> Path:
    """Return ``path`` as a Path if it is a local model folder, else raise a clear LMInputError."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise LMInputError(f"model folder {str(folder)!r} does not exist (models are local folders, never hub ids)")
    if not (folder / "config.json").is_file():
        raise LMInputError(f"model folder {str(folder)!r} has no config.json: is it a Hugging Face model folder?")
    return folder


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` means the local CUDA device when there is one (honouring LOCAL_RANK), else the CPU."""
    import os

    import torch

    if requested != "auto":
        try:
            return torch.device(requested)
        except RuntimeError as err:
            raise LMInputError(f"unknown device {requested!r}: {err}") from err
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return torch.device("cpu")


def pick_dtype(device: torch.device, requested: str = "auto") -> torch.dtype:
    """bf16 on a GPU, fp32 on the CPU (bf16 matmuls on CPU are slow and lossy), unless a dtype is named."""
    import torch

    if requested == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if requested not in _DTYPES:
        raise LMInputError(f"unknown dtype {requested!r}; choose one of auto, {', '.join(sorted(_DTYPES))}")
    return getattr(torch, _DTYPES[requested])


def flash_attention_installed() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def pick_attn_implementation(device: torch.device, requested: str = "auto") -> str:
    """flash-attention 2 when installed and on a GPU, else PyTorch SDPA (always available)."""
    if requested != "auto":
        return requested
    if device.type == "cuda" and flash_attention_installed():
        return "flash_attention_2"
    return "sdpa"


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    folder = check_model_dir(path) if (Path(path) / "config.json").exists() else Path(path)
    if not (folder / "tokenizer_config.json").is_file():
        raise LMInputError(f"{str(folder)!r} has no tokenizer_config.json")
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    path: str | Path,
    *,
    device: str = "auto",
    dtype: str = "auto",
    attn_implementation: str = "auto",
    lora: LoraSettings | None = None,
    trainable: bool = False,
) -> PreTrainedModel:
    """Load a causal LM from a local folder onto a device, optionally wrapped with LoRA adapters.

    ``trainable=False`` returns the model in eval mode with gradients off (generation, reference, evaluation).
    """
    from transformers import AutoModelForCausalLM

    folder = check_model_dir(path)
    dev = pick_device(device)
    torch_dtype = pick_dtype(dev, dtype)
    attn = pick_attn_implementation(dev, attn_implementation)
    model = AutoModelForCausalLM.from_pretrained(
        str(folder), dtype=torch_dtype, attn_implementation=attn, local_files_only=True
    )
    model.to(dev)
    if lora is not None:
        model = apply_lora(model, lora)
    if trainable:
        model.train()
    else:
        model.eval()
        model.requires_grad_(False)
    return model


def apply_lora(model: PreTrainedModel, lora: LoraSettings) -> Any:
    """Wrap ``model`` with LoRA adapters (peft); only the adapters train."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:  # pragma: no cover - peft is a dependency of the lm extra
        raise LMInputError("LoRA needs the `peft` package; install it or turn LoRA off") from err
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def frozen_copy(model: Any) -> Any:
    """A frozen copy of ``model`` (the reference for DPO/SPIN or a KL term): eval mode, no gradients.

    With LoRA the reference is the base model with adapters disabled, which needs no copy at all; callers that
    want that should use ``model.disable_adapter()`` instead. This copies whatever it is given.
    """
    reference = copy.deepcopy(model)
    reference.eval()
    reference.requires_grad_(False)
    return reference
