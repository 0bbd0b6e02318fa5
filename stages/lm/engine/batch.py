"""What a stage hands the engine: sequences, grouped.

Why this shape: every method reduces to "log-probabilities of some tokens of some sequences, combined by a loss".
SFT trains the assistant tokens of one sequence; DPO/SPIN compares a chosen and a rejected sequence; GRPO weights
tokens by advantages; pi-Distill scores the same response under a teacher prompt and a student prompt. So a
``Sample`` is token ids, a mask of trained tokens, optional per-token values (old log-probs, advantages, ...) and
optional per-sequence values; a *group* is the samples a loss must see together (a pair, say), which the packer
never splits across micro-batches.

Per-token values are aligned with ``input_ids``: ``token_fields["advantages"][t]`` belongs to predicting token t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from stages.lm.errors import LMInputError


@dataclass
class Sample:
    """One sequence: ids, which tokens are trained, and values the loss needs."""

    input_ids: list[int]
    loss_mask: list[bool]
    token_fields: dict[str, list[float]] = field(default_factory=dict)
    doc_fields: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check lengths (again: stages often attach token fields after building the sample)."""
        n = len(self.input_ids)
        if n < 2:
            raise LMInputError(f"a sample needs at least 2 tokens, got {n}")
        if len(self.loss_mask) != n:
            raise LMInputError(f"loss_mask has {len(self.loss_mask)} entries for {n} tokens")
        if self.loss_mask and self.loss_mask[0]:
            raise LMInputError("the first token of a sample cannot be trained (nothing precedes it)")
        for name, values in self.token_fields.items():
            if len(values) != n:
                raise LMInputError(f"token field {name!r} has {len(values)} values for {n} tokens")

    def __len__(self) -> int:
        return len(self.input_ids)

    @classmethod
    def from_chat(cls, encoded: object, **doc_fields: float) -> Sample:
        """A sample from ``stages.lm.chat.EncodedChat`` (its assistant mask becomes the loss mask)."""
        return cls(list(encoded.input_ids), list(encoded.assistant_mask), doc_fields=dict(doc_fields))  # type: ignore[attr-defined]


Group = list[Sample]


def group_tokens(group: Sequence[Sample]) -> int:
    return sum(len(s) for s in group)


def check_groups(groups: Sequence[Sequence[Sample]], max_length: int) -> None:
    if not groups:
        raise LMInputError("a training step needs at least one group of samples")
    for gi, group in enumerate(groups):
        if not group:
            raise LMInputError(f"group {gi} is empty")
        for si, sample in enumerate(group):
            try:
                sample.validate()
            except LMInputError as err:
                raise LMInputError(f"group {gi} sample {si}: {err}") from None
            if len(sample) > max_length:
                raise LMInputError(
                    f"group {gi} sample {si} has {len(sample)} tokens, over max_length {max_length}: "
                    "filter or truncate long samples before training"
                )
        keys = {tuple(sorted(s.token_fields)) for s in group}
        if len(keys) > 1:
            raise LMInputError(f"group {gi}: samples disagree on token_fields {sorted(keys)}")
