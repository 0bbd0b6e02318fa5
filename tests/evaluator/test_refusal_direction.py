"""The refusal direction's arithmetic and hooks: a planted direction is recovered, ablation removes it exactly,
addition adds it where asked, and selection follows the paper's filters."""

from __future__ import annotations

import pytest
import torch

from stages.evaluator.safety import direction as D


def planted(n: int = 4096, d: int = 64, strength: float = 3.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    r = D.unit(torch.randn(d, generator=g))
    harmless = torch.randn(n, d, generator=g)
    harmful = torch.randn(n, d, generator=g) + strength * r
    return r, harmful, harmless


def test_difference_in_means_recovers_a_planted_direction():
    r, harmful, harmless = planted()
    found = D.diff_in_means(harmful, harmless)
    assert float(torch.dot(D.unit(found), r.double())) > 0.99


def test_a_direction_absent_from_the_data_is_not_found():
    _, harmful, harmless = planted(strength=0.0)
    other = D.unit(torch.randn(64, generator=torch.Generator().manual_seed(5)))
    assert abs(float(torch.dot(D.unit(D.diff_in_means(harmful, harmless)).float(), other))) < 0.5


def test_ablation_removes_the_component_exactly_and_keeps_the_rest():
    r, harmful, _ = planted()
    out = D.ablate(harmful.double(), r.double())
    assert torch.allclose(out @ r.double(), torch.zeros(len(out), dtype=torch.double), atol=1e-12)
    rd = D.unit(r.double())
    rest = harmful.double() - (harmful.double() @ rd).unsqueeze(-1) * rd
    assert torch.allclose(out, rest)
    assert D.mean_projection(out, r) == pytest.approx(0.0, abs=1e-12)
    assert D.mean_projection(harmful, r) == pytest.approx(3.0, abs=0.3)


def test_cosine_per_layer_and_shape_checks():
    a = torch.randn(4, 16)
    assert D.cosine_per_layer(a, 2 * a) == pytest.approx([1.0] * 4)
    assert D.cosine_per_layer(a, -a) == pytest.approx([-1.0] * 4)
    with pytest.raises(ValueError, match="shapes differ"):
        D.diff_in_means(torch.zeros(3, 2, 8), torch.zeros(3, 2, 9))


def test_refusal_score_is_the_log_odds_of_the_refusal_tokens():
    logits = torch.log(torch.tensor([[0.2, 0.3, 0.5]]))
    score = D.refusal_score(logits, [0, 1])
    assert float(score[0]) == pytest.approx(0.0, abs=1e-6)  # p = 0.5
    assert float(D.refusal_score(logits, [2])[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(D.refusal_score(logits, [0])[0]) == pytest.approx(torch.log(torch.tensor(0.2 / 0.8)).item(), abs=1e-6)


def test_selection_applies_the_papers_filters():
    C = D.Candidate
    cands = [C(-1, 1, bypass_score=-5.0, induce_score=-1.0, kl_score=0.0),  # does not induce refusal
             C(-1, 2, bypass_score=-4.0, induce_score=1.0, kl_score=0.5),  # moves harmless outputs too much
             C(-1, 9, bypass_score=-6.0, induce_score=1.0, kl_score=0.0),  # too deep (9 >= 0.8 * 10)
             C(-2, 3, bypass_score=-2.0, induce_score=2.0, kl_score=0.01),
             C(-1, 4, bypass_score=-3.0, induce_score=0.5, kl_score=0.05)]
    assert D.select(cands, num_layers=10) == cands[4]
    with pytest.raises(ValueError, match="no candidate"):
        D.select(cands[:3], num_layers=10)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def test_ablation_hooks_leave_no_component_in_any_layer(tiny):
    ids = torch.randint(0, 1000, (2, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    r = D.unit(torch.randn(tiny.config.hidden_size, generator=torch.Generator().manual_seed(2)))
    before = D.residuals(tiny, ids, mask, positions=7)
    plain_logits = D.last_logits(tiny, ids, mask)
    with D.ablation(tiny, r):
        after = D.residuals(tiny, ids, mask, positions=7)
        ablated_logits = D.last_logits(tiny, ids, mask)
    again = D.residuals(tiny, ids, mask, positions=7)
    assert float((before @ r).abs().max()) > 1e-3
    assert float((after @ r).abs().max()) < 1e-5  # every block reads a stream with no component along r
    assert not torch.allclose(plain_logits, ablated_logits)
    assert torch.allclose(again, before)  # hooks removed on exit
    assert D.next_token_kl(plain_logits, plain_logits) == pytest.approx(0.0, abs=1e-9)
    assert D.next_token_kl(plain_logits, ablated_logits) > 0


def test_addition_adds_the_direction_at_its_layer_only(tiny):
    ids = torch.randint(0, 1000, (2, 5), generator=torch.Generator().manual_seed(3))
    mask = torch.ones_like(ids)
    d = tiny.config.hidden_size
    v = torch.randn(d, generator=torch.Generator().manual_seed(4))
    acts = D.residuals(tiny, ids, mask, positions=2)
    assert acts.shape == (2, len(D.decoder_layers(tiny)), 2, d)
    with D.addition(tiny, v, layer=1, coeff=2.0):
        added = D.residuals(tiny, ids, mask, positions=2)
    assert torch.allclose(added[:, 0], acts[:, 0])  # blocks before the addition read the same stream
    assert torch.allclose(added[:, 1], acts[:, 1] + 2.0 * v, atol=1e-5)  # block 1 reads it with 2v added
    after = D.residuals(tiny, ids, mask, positions=2)
    assert torch.allclose(after, acts)  # the hook is gone


def test_ablation_of_the_found_direction_on_a_model_zeroes_its_projection(tiny):
    ids = torch.randint(0, 1000, (6, 5), generator=torch.Generator().manual_seed(6))
    mask = torch.ones_like(ids)
    acts = D.residuals(tiny, ids, mask, positions=1)
    r = D.diff_in_means(acts[:3, 1, 0], acts[3:, 1, 0]).float()
    with D.ablation(tiny, r):
        ablated = D.residuals(tiny, ids, mask, positions=1)
    assert D.mean_projection(ablated[:, 1, 0], r) == pytest.approx(0.0, abs=1e-5)
