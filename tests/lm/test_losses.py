"""Each loss against its formula, computed directly on hand-built tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stages.lm.engine.batch import Sample
from stages.lm.engine.packing import pack
from stages.lm.errors import LMInputError
from stages.lm.losses.dpo import DPOLoss
from stages.lm.losses.grpo import GRPOLoss, group_advantages
from stages.lm.losses.nll import NLLLoss
from stages.lm.losses.pi_distill import PiDistillLoss, shaped_advantages


def sample(n: int, trained: int, **fields) -> Sample:
    token_fields = {k: v for k, v in fields.items() if isinstance(v, list)}
    doc_fields = {k: v for k, v in fields.items() if not isinstance(v, list)}
    return Sample(list(range(1, n + 1)), [False] * (n - trained) + [True] * trained, token_fields, doc_fields)


def logp_for(batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (-torch.rand(batch.num_tokens, generator=g, dtype=torch.float64) * 3).requires_grad_()


def trained_values(s: Sample, values):
    """A sample's per-token values at its trained positions (what the packed, shifted batch selects)."""
    return [v for v, m in zip(values, s.loss_mask) if m]


def test_nll_is_the_token_mean_of_trained_tokens():
    groups = [[sample(5, 3)], [sample(4, 2)]]
    batch = pack(groups, pad_id=0, pad_to=16)
    logp = logp_for(batch)
    loss = NLLLoss()
    out = loss(logp, batch)
    assert loss.units(batch) == 5
    assert torch.isclose(out.loss, -logp[batch.loss_mask].sum())
    # the packed mask sits on the position *before* each trained token (targets are next tokens)
    assert batch.loss_mask.nonzero().flatten().tolist() == [1, 2, 3, 6, 7]
    per_seq = NLLLoss(per_sequence=True)
    expected = -(logp[1:4].mean() + logp[6:8].mean())
    assert per_seq.units(batch) == 2 and torch.isclose(per_seq(logp, batch).loss, expected)


def test_dpo_sigmoid_and_hinge_match_the_formula():
    beta = 0.1
    pairs = [
        [sample(4, 2, chosen=1.0, ref_logprobs=[0, 0, -1.0, -2.0]), sample(5, 3, chosen=0.0, ref_logprobs=[0, 0, -0.5, -0.5, -1.5])],
        [sample(3, 2, chosen=1.0, ref_logprobs=[0, -0.2, -0.3]), sample(3, 1, chosen=0.0, ref_logprobs=[0, 0, -4.0])],
    ]
    batch = pack(pairs, pad_id=0)
    logp = logp_for(batch, 1)
    per_doc = [logp[batch.loss_mask & (batch.doc_index == d)].sum() for d in range(4)]
    ref = [sum(trained_values(s, s.token_fields["ref_logprobs"])) for g in pairs for s in g]
    margins = [(per_doc[0] - ref[0]) - (per_doc[1] - ref[1]), (per_doc[2] - ref[2]) - (per_doc[3] - ref[3])]
    expected = sum(-F.logsigmoid(beta * m) for m in margins)
    out = DPOLoss(beta=beta)(logp, batch)
    assert DPOLoss().units(batch) == 2
    assert torch.isclose(out.loss, expected)
    assert out.metrics["reward_accuracy"] == sum(float(m > 0) for m in margins)
    hinge = DPOLoss(beta=beta, loss_type="hinge")(logp, batch).loss
    assert torch.isclose(hinge, sum(torch.relu(1 - beta * m) for m in margins))
    out.loss.backward()
    assert logp.grad[~batch.loss_mask].abs().sum() == 0  # only trained tokens get gradient


def test_dpo_rejects_malformed_pairs():
    batch = pack([[sample(4, 2, chosen=1.0, ref_logprobs=[0.0] * 4), sample(4, 2, chosen=1.0, ref_logprobs=[0.0] * 4)]], 0)
    with pytest.raises(LMInputError, match="chosen, rejected"):
        DPOLoss()(logp_for(batch), batch)
    with pytest.raises(LMInputError, match="ref_logprobs"):
        no_ref = pack([[sample(4, 2, chosen=1.0), sample(4, 2, chosen=0.0)]], 0)
        DPOLoss()(logp_for(no_ref), no_ref)


def test_group_advantages_are_normalised_per_group():
    adv = group_advantages([1, 0, 0, 1, 1, 1, 0, 0], group_size=4)
    r = torch.tensor([1.0, 0, 0, 1])
    assert adv[:4] == pytest.approx(((r - r.mean()) / (r.std() + 1e-6)).tolist())
    assert adv[4:] == pytest.approx([0.866, 0.866, -0.866, -0.866], abs=1e-3)
    assert group_advantages([1, 1, 1], 3) == [0.0, 0.0, 0.0]
    with pytest.raises(LMInputError):
        group_advantages([1, 0, 1], 2)


@pytest.mark.parametrize("kl_beta", [0.0, 0.04])
def test_grpo_clipped_surrogate_matches_the_formula(kl_beta):
    eps_low, eps_high = 0.2, 0.28
    s1 = sample(5, 3, old_logprobs=[0, 0, -1.0, -2.0, -0.5], advantages=[0, 0, 1.5, 1.5, 1.5], ref_logprobs=[0, 0, -1.1, -1.9, -0.7])
    s2 = sample(4, 2, old_logprobs=[0, 0, -3.0, -0.1], advantages=[0, 0, -0.7, -0.7], ref_logprobs=[0, 0, -2.5, -0.2])
    batch = pack([[s1], [s2]], pad_id=0, pad_to=12)
    logp = logp_for(batch, 2)
    lp = logp[batch.loss_mask]
    old = torch.tensor(trained_values(s1, s1.token_fields["old_logprobs"]) + trained_values(s2, s2.token_fields["old_logprobs"]), dtype=torch.float64)
    adv = torch.tensor(trained_values(s1, s1.token_fields["advantages"]) + trained_values(s2, s2.token_fields["advantages"]), dtype=torch.float64)
    ref = torch.tensor(trained_values(s1, s1.token_fields["ref_logprobs"]) + trained_values(s2, s2.token_fields["ref_logprobs"]), dtype=torch.float64)
    rho = torch.exp(lp - old)
    per_token = -torch.minimum(rho * adv, rho.clamp(1 - eps_low, 1 + eps_high) * adv)
    per_token = per_token + kl_beta * (torch.exp(ref - lp) - (ref - lp) - 1)
    loss = GRPOLoss(clip_low=eps_low, clip_high=eps_high, kl_beta=kl_beta)
    assert loss.units(batch) == 5
    assert torch.isclose(loss(logp, batch).loss, per_token.sum())
    seq = GRPOLoss(clip_low=eps_low, clip_high=eps_high, kl_beta=kl_beta, aggregation="seq-mean-token-mean")
    assert seq.units(batch) == 2
    assert torch.isclose(seq(logp, batch).loss, per_token[:3].mean() + per_token[3:].mean())


def test_grpo_gradient_vanishes_once_clipped():
    s = sample(3, 1, old_logprobs=[0, 0, math.log(0.5)], advantages=[0, 0, 1.0])
    batch = pack([[s]], pad_id=0)
    logp = torch.full((batch.num_tokens,), math.log(0.9), dtype=torch.float64, requires_grad=True)  # rho = 1.8 > 1.2
    GRPOLoss()(logp, batch).loss.backward()
    assert logp.grad.abs().sum() == 0


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_pi_distill_teacher_and_student_terms(alpha):
    clip = 0.2
    # teacher view: longer prompt (privileged info) + the same 3 response tokens as the student view
    teacher = sample(7, 3, teacher=1.0, old_logprobs=[0] * 4 + [-1.0, -2.0, -0.5], advantages=[0] * 4 + [0.8] * 3)
    student = sample(5, 3, teacher=0.0, old_logprobs=[0] * 5, advantages=[0, 0] + [0.8] * 3)
    batch = pack([[teacher, student]], pad_id=0, pad_to=16)
    logp = logp_for(batch, 3)
    lp_t, lp_s = logp[0:7][batch.loss_mask[0:7]], logp[7:12][batch.loss_mask[7:12]]
    old = torch.tensor([-1.0, -2.0, -0.5], dtype=torch.float64)
    adv = torch.full((3,), 0.8, dtype=torch.float64)

    def surrogate(ratio):
        return -torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)

    expected = alpha * surrogate(torch.exp(lp_t - old)).sum() + (1 - alpha) * surrogate(torch.exp(lp_s - lp_t.detach())).sum()
    loss = PiDistillLoss(alpha=alpha, clip=clip, student_clip=clip)
    assert loss.units(batch) == 3
    out = loss(logp, batch)
    assert torch.isclose(out.loss, expected)
    out.loss.backward()
    if alpha == 0.0:  # the student term never pushes on the teacher view (stop-gradient)
        assert logp.grad[0:7].abs().sum() == 0 and logp.grad[7:12].abs().sum() > 0
    if alpha == 1.0:
        assert logp.grad[7:12].abs().sum() == 0


def test_pi_distill_shaping_and_pairing_checks():
    adv = shaped_advantages(torch.tensor([1.0, -1.0]), torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -4.0]), beta=0.1)
    assert adv.tolist() == pytest.approx([1.0 - 0.1 * 1.0, -1.0 - 0.1 * -1.0])
    bad = pack([[sample(6, 3, teacher=1.0, old_logprobs=[0.0] * 6, advantages=[0.0] * 6),
                 sample(5, 2, teacher=0.0, old_logprobs=[0.0] * 5, advantages=[0.0] * 5)]], 0)
    with pytest.raises(LMInputError, match="same response tokens"):
        PiDistillLoss()(logp_for(bad), bad)
    with pytest.raises(LMInputError, match="alpha"):
        PiDistillLoss(alpha=2.0)
