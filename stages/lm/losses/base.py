"""The loss protocol the engine calls.

Why sums and units: gradient accumulation over micro-batches (and ranks) must give the same gradient as one big
batch. The engine counts ``units`` over the whole global batch first, then scales each micro-batch's summed loss
by ``1 / total_units``; so a token-mean NLL over 3 micro-batches equals the token-mean over their union.
Metrics are sums too and are divided by the same total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from stages.lm.engine.packing import PackedBatch


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar, summed over this micro-batch's units
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # scalars, summed over units


class LossFn(Protocol):
    def units(self, batch: PackedBatch) -> float:
        """How many averaging units (tokens, sequences, pairs) this micro-batch holds."""

    def __call__(self, logp: torch.Tensor, batch: PackedBatch) -> LossOutput:
        """Summed loss over this micro-batch; ``logp`` is (T,) log p(batch.targets)."""


def required_field(batch: PackedBatch, name: str, kind: str = "token") -> torch.Tensor:
    fields = batch.token_fields if kind == "token" else batch.doc_fields
    if name not in fields:
        from stages.lm.errors import LMInputError

        raise LMInputError(f"this loss needs the {kind} field {name!r} on every sample; have {sorted(fields)}")
    return fields[name]
