"""The one generation interface every backend implements.

Why: collection (teacher answers), SPIN (the model's own samples), GRPO and pi-Distill rollouts and generative
evaluation all ask the same question: for these chat prompts, give n samples each under these sampling
parameters and this seed, with the token ids, optionally per-token log-probs, and why each sample stopped. The
backend (``hf`` on CPU and in tests, ``vllm`` on GPUs, ``openai`` for remote 32B/70B teachers) is a setting.

Log-probs are of the model's own distribution (temperature 1, no top-p/top-k), the quantity losses compare
against; vLLM reports the same by default.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from stages.lm.errors import LMInputError

Messages = list[dict[str, Any]]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    max_tokens: int = 256
    seed: int = 0
    logprobs: bool = False
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False  # benchmarks: always generate max_tokens

    def __post_init__(self) -> None:
        if self.n < 1:
            raise LMInputError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise LMInputError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise LMInputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise LMInputError(f"top_k must be >= 0, got {self.top_k}")
        if self.max_tokens < 1:
            raise LMInputError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Completion:
    text: str
    token_ids: list[int] | None  # the generated ids, the terminating end-of-turn token included when it stopped
    finish_reason: FinishReason
    logprobs: list[float] | None = None  # one per token id, when asked


@dataclass
class PromptResult:
    prompt_index: int
    completions: list[Completion] = field(default_factory=list)


def derive_seed(seed: int, *parts: int) -> int:
    """A 31-bit seed from (seed, prompt index, ...): independent streams per prompt and per base seed.

    Engines seed sample k of a request with seed + k; deriving each request's seed by hashing keeps nearby base
    seeds and nearby prompts from sharing samples.
    """
    digest = hashlib.sha256(":".join(str(x) for x in (seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class GenerationBackend(Protocol):
    name: str

    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[PromptResult]:
        """n completions for each prompt, in prompt order."""

    def close(self) -> None:
        """Release the model / engine / connections."""
