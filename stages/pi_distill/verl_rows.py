"""π-Distill and OPSD on verl's batches: the other view's rows, the β shaping, and the rows of the actor update.

Why rows and not a custom loss: verl's actor update runs one forward pass over whatever ``input_ids`` a row holds,
and its stock clipped loss (``core_algos.compute_policy_loss_vanilla``) computes
``-min(rho A, clip(rho, 1 +- eps) A)`` with ``rho = exp(log_prob - old_log_probs)`` per response token. So the
student term of π-Distill (the teacher's sampled response scored under the student prompt, ratio against the
teacher's log-prob) is that same loss on a *copy* of each rollout row carrying the student prompt and the
teacher's old log-probs. Per step, with the rollout batch holding GRPO advantages and the sampler's old log-probs
(verl's own old-log-prob pass):

1. ``view_rows``: every response again, after the other view's prompt (π-Distill: the student prompt; OPSD: the
   teacher prompt); verl's old-log-prob pass on these rows gives the other view's log-probs.
2. ``shape``: A' = A - beta * sum_t (log pi_sampler - log pi_other) per response (the KL of the paper's
   objectives enters as reward shaping, as in the reference code and the native engine).
3. ``update_rows``: π-Distill: sampler (teacher) rows with advantages alpha * k * A' and other-view (student) rows
   with (1 - alpha) * k * A' and ``old_log_probs`` = the teacher's, pairs interleaved; a kind whose weight is 0 is
   left out and k is the number of kinds kept. verl's token-mean then averages over k x the response tokens, so
   the factor k makes the summed loss exactly the native engine's alpha * teacher + (1 - alpha) * student averaged
   over one view's tokens. OPSD: the student's own rows with A' (plain GRPO on the shaped reward).
   Responses of groups with equal rewards are left out (``response_mask`` zero, so verl's token count skips
   them too) when the run drops zero-variance groups, as the native engine does.

The stage's CPU tests run these functions on verl's real actor worker and compare every term with the native
engine's (``tests/pi_distill/test_verl_parity.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from verl import DataProto
from verl.utils.model import compute_position_id_with_mask


@dataclass(frozen=True)
class Shaped:
    """A step's shaped advantages and what the metrics report about them (per row)."""

    advantages: torch.Tensor  # (rows, response length): A' on response tokens, 0 elsewhere
    outcome: torch.Tensor  # (rows,): GRPO's advantage A of each response
    gap: torch.Tensor  # (rows,): sum_t (log pi_sampler - log pi_other)
    keep: torch.Tensor  # (rows,) bool: the response trains (its group has a reward spread, or dropping is off)


def prompt_ids(batch: DataProto) -> list[list[int]]:
    """The prompt of every row: the left-padded ``prompts`` without their padding."""
    prompts = batch.batch["prompts"]
    mask = batch.batch["attention_mask"][:, : prompts.shape[1]].bool()
    return [row[m].tolist() for row, m in zip(prompts, mask)]


def view_rows(batch: DataProto, prompts: Sequence[Sequence[int]], pad_id: int, width: int | None = None) -> DataProto:
    """The rows' responses after other prompts (left-padded to ``width``, default the longest), laid out as verl
    lays out rollouts: ``input_ids`` = prompt + response, position ids counted over the attended tokens."""
    responses = batch.batch["responses"]
    rows, resp_len = responses.shape
    width = max(len(p) for p in prompts) if width is None else width
    ids = torch.full((rows, width), pad_id, dtype=responses.dtype)
    mask = torch.zeros((rows, width), dtype=batch.batch["attention_mask"].dtype)
    for i, p in enumerate(prompts):
        if p:
            ids[i, width - len(p):] = torch.as_tensor(list(p), dtype=responses.dtype)
            mask[i, width - len(p):] = 1
    attention = torch.cat([mask, batch.batch["attention_mask"][:, -resp_len:]], dim=1)
    tensors = {"prompts": ids, "responses": responses, "input_ids": torch.cat([ids, responses], dim=1),
               "attention_mask": attention, "position_ids": compute_position_id_with_mask(attention),
               "response_mask": batch.batch["response_mask"]}
    meta = {**batch.meta_info, "global_token_num": attention.sum(-1).tolist()}
    return DataProto.from_dict(tensors=tensors, meta_info=meta)


def response_sums(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum over each row's response tokens."""
    return (values.double() * mask.double()).sum(dim=-1)


def groups_with_spread(scores: torch.Tensor, uids: Sequence[str]) -> torch.Tensor:
    """Per row: does its group (rows sharing a uid) hold two different rewards?"""
    spread: dict[str, tuple[float, float]] = {}
    for uid, s in zip(uids, scores.tolist()):
        lo, hi = spread.get(uid, (s, s))
        spread[uid] = (min(lo, s), max(hi, s))
    return torch.tensor([spread[u][1] - spread[u][0] > 1e-9 for u in uids], dtype=torch.bool)


def shape(batch: DataProto, other_log_probs: torch.Tensor, beta: float, drop_equal: bool) -> Shaped:
    """A' = A - beta * sum_t(log pi_sampler - log pi_other) from the batch's GRPO ``advantages`` and the sampler's
    ``old_log_probs``; rows of equal-reward groups are marked to leave out when ``drop_equal``."""
    mask = batch.batch["response_mask"].to(torch.float64)
    gap = response_sums(batch.batch["old_log_probs"], mask) - response_sums(other_log_probs, mask)
    advantages = batch.batch["advantages"].to(torch.float64)
    lengths = mask.sum(dim=-1).clamp(min=1)
    outcome = (advantages * mask).sum(dim=-1) / lengths  # GRPO's per-response advantage (constant over tokens)
    shaped = (advantages - beta * gap[:, None]) * mask
    has_tokens = mask.sum(dim=-1) > 0
    if drop_equal:
        scores = batch.batch["token_level_scores"].sum(dim=-1)
        keep = groups_with_spread(scores, list(batch.non_tensor_batch["uid"])) & has_tokens
    else:
        keep = has_tokens
    return Shaped(shaped.to(batch.batch["advantages"].dtype), outcome, gap, keep)


def interleave(a: DataProto, b: DataProto) -> DataProto:
    """Rows a0, b0, a1, b1, ...: a teacher row and its student twin stay side by side in every split verl makes
    (its data-parallel chunks and mini-batches are contiguous and even)."""
    both = DataProto.concat([a, b])
    n = len(a)
    order = torch.stack([torch.arange(n), torch.arange(n) + n], dim=1).flatten()
    both.reorder(order)
    return both


def update_rows(sampler: DataProto, other: DataProto, sampler_old: torch.Tensor, shaped: Shaped, pad_id: int,
                sampler_weight: float, other_weight: float) -> tuple[DataProto, int]:
    """The rows the actor update trains on, and k, the number of row kinds (1 or 2) they hold.

    ``sampler``/``other``: the rollout's rows under the sampling view and the other view (``view_rows``). Both
    kinds get ``old_log_probs`` = the sampler's (so the other view's ratio is pi_other / pi_sampler,old, the
    student's importance ratio of π-Distill) and the shaped advantages times ``weight * k``.
    """
    weights = [(rows, w) for rows, w in ((sampler, sampler_weight), (other, other_weight)) if w > 0]
    if not weights:
        raise ValueError("at least one of the sampler and the other view must have a positive weight")
    k = len(weights)
    width = max(rows.batch["prompts"].shape[1] for rows, _ in weights)
    keep = shaped.keep[:, None].to(sampler.batch["response_mask"].dtype)
    kinds = []
    for rows, w in weights:
        laid = view_rows(rows, prompt_ids(rows), pad_id, width)
        laid.batch["response_mask"] = rows.batch["response_mask"] * keep
        laid.batch["old_log_probs"] = sampler_old
        laid.batch["advantages"] = shaped.advantages * (w * k)
        laid.meta_info = {}
        kinds.append(laid)
    out = interleave(*kinds) if k == 2 else kinds[0]
    out.meta_info = {**sampler.meta_info, "global_token_num": out.batch["attention_mask"].sum(-1).tolist()}
    return out, k
