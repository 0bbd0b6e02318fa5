"""Token ids of SPIN's pairs and the training groups the engine consumes.

Why token ids, built once: the rejected side is the model's own sample exactly as generated (its token ids, the
end-of-turn token included when it stopped), never a re-tokenisation of its text; the chosen side is the prompt plus
the ground-truth response through the project's chat format, so both sides share the very prompt ids generation
used. A chosen response longer than ``max_length`` is cut at the end (counted); prompts over
``max_prompt_length`` are left out (counted), as no sample could be trained for them.

A training group is ``[chosen, rejected]`` with doc field ``chosen`` = 1 / 0 (the DPO loss's data contract). The
reference log-probability of each side is stored once per pair as a sum over its response tokens (see
``train.py``); the DPO loss only ever uses that sum (``sum(ref * mask)``), so the whole sum sits on the first
response token of the ``ref_logprobs`` token field and the other positions hold 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover  (kept light: bench/bench_spin.py builds pairs on a bare GPU box)
    from stages.spin.prompts import PromptRow


@dataclass(frozen=True)
class EncodedPrompt:
    row: PromptRow
    prompt_ids: list[int]
    chosen_ids: list[int]  # the chosen response's ids (after the prompt)
    chosen_truncated: bool


def encode_prompts(rows: Sequence[PromptRow], tokenizer: Any, thinking: bool, max_prompt_length: int,
                   max_length: int) -> tuple[list[EncodedPrompt], int]:
    """The rows whose prompt fits, with their ids; and how many rows were left out for a long prompt."""
    from stages.lm.chat import ChatFormat

    fmt = ChatFormat(thinking=thinking)
    kept: list[EncodedPrompt] = []
    too_long = 0
    for row in rows:
        enc = fmt.encode(tokenizer, [*row.messages, {"role": "assistant", "content": row.chosen}])
        prompt_len = enc.prompt_length
        if prompt_len > max_prompt_length:
            too_long += 1
            continue
        chosen = list(enc.input_ids[prompt_len:])
        room = max_length - prompt_len
        kept.append(EncodedPrompt(row, list(enc.input_ids[:prompt_len]), chosen[:room], len(chosen) > room))
    return kept, too_long


def sample(prompt_ids: Sequence[int], response_ids: Sequence[int], ref_sum: float | None = None) -> Any:
    """One sequence: prompt + response, trained on the response; ``ref_sum`` on its first response token."""
    from stages.lm.engine.batch import Sample

    ids = list(prompt_ids) + list(response_ids)
    mask = [False] * len(prompt_ids) + [True] * len(response_ids)
    fields = {}
    if ref_sum is not None:
        ref = [0.0] * len(ids)
        if response_ids:
            ref[len(prompt_ids)] = float(ref_sum)
        fields["ref_logprobs"] = ref
    return Sample(ids, mask, token_fields=fields)


def pair_group(prompt_ids: Sequence[int], chosen_ids: Sequence[int], rejected_ids: Sequence[int],
               ref_chosen: float | None = None, ref_rejected: float | None = None) -> list[Any]:
    """``[chosen, rejected]`` as the DPO loss wants them (reference sums attached when given)."""
    chosen = sample(prompt_ids, chosen_ids, ref_chosen)
    rejected = sample(prompt_ids, rejected_ids, ref_rejected)
    chosen.doc_fields["chosen"] = 1.0
    rejected.doc_fields["chosen"] = 0.0
    return [chosen, rejected]


def response_logprob_sums(scored: Sequence[Sequence[Sequence[float]]],
                          groups: Sequence[Sequence[Any]]) -> list[list[float]]:
    """Per group, per sample: the sum of per-token log-probs over the trained (response) tokens."""
    sums = []
    for group, per_sample in zip(groups, scored):
        sums.append([float(sum(lp for lp, keep in zip(logp, s.loss_mask) if keep))
                     for s, logp in zip(group, per_sample)])
    return sums
