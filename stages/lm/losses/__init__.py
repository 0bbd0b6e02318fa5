"""Losses: each method is a small function of per-token log-probabilities.

Why: methods differ only in data and loss, so a loss is a few dozen lines over the packed micro-batch
(``stages.lm.engine.packing.PackedBatch``) and the policy's log p(target) per token. Every loss object has
``units(batch)`` (what the loss averages over: tokens, sequences or pairs, countable before any forward pass so
the engine can normalise across micro-batches and ranks) and ``__call__(logp, batch) -> LossOutput`` returning
sums over those units. Import the concrete losses from their modules: ``nll.NLLLoss``, ``dpo.DPOLoss``,
``grpo.GRPOLoss``, ``pi_distill.PiDistillLoss``.
"""

from stages.lm.losses.base import LossFn, LossOutput

__all__ = ["LossFn", "LossOutput"]
