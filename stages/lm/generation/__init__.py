"""Generation backends behind one interface (``types.GenerationBackend``).

Why a registry of names: the backend is a manifest setting (``hf`` | ``vllm`` | ``openai``), and each backend's
heavy dependency (transformers, vllm, an HTTP client) is imported only when that backend is chosen; in particular
``vllm`` is never imported unless asked for.
"""

from __future__ import annotations

from typing import Any

from stages.lm.errors import LMInputError
from stages.lm.generation.types import Completion, GenerationBackend, PromptResult, SamplingParams

BACKENDS = ("hf", "vllm", "openai")

__all__ = ["BACKENDS", "Completion", "GenerationBackend", "PromptResult", "SamplingParams", "make_backend"]


def make_backend(name: str, **options: Any) -> GenerationBackend:
    """Build the backend called ``name`` with its own options (see each backend's constructor)."""
    if name == "hf":
        from stages.lm.generation.hf_backend import HFBackend

        return HFBackend(**options)
    if name == "vllm":
        from stages.lm.generation.vllm_backend import VLLMBackend

        return VLLMBackend(**options)
    if name == "openai":
        from stages.lm.generation.openai_backend import OpenAIBackend

        return OpenAIBackend(**options)
    raise LMInputError(f"unknown generation backend {name!r}; choose one of {', '.join(BACKENDS)}")
