"""Packing: layout of a packed row, bin planning, chunked log-probs, and no attention across documents."""

from __future__ import annotations

import pytest
import torch

from stages.lm.engine.batch import Sample
from stages.lm.engine.logprobs import token_logprobs
from stages.lm.engine.packing import CU_SEQLENS_MULTIPLE, pack, plan_micro_batches


def test_pack_layout_shifts_targets_and_restarts_positions():
    a = Sample([11, 12, 13], [False, True, True], {"adv": [0.0, 1.0, 2.0]}, {"chosen": 1.0})
    b = Sample([21, 22], [False, True], {"adv": [0.0, 3.0]})
    batch = pack([[a], [b]], pad_id=0, pad_to=9, max_doc_tokens=3)
    assert batch.input_ids.tolist() == [11, 12, 13, 21, 22, 0, 0, 0, 0]
    assert batch.targets.tolist() == [12, 13, 0, 22, 0, 0, 0, 0, 0]
    assert batch.loss_mask.tolist() == [True, True, False, True, False, False, False, False, False]
    assert batch.token_fields["adv"].tolist() == [1.0, 2.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert batch.position_ids.tolist() == [0, 1, 2, 0, 1, 0, 1, 2, 0]  # padding split into docs of <= 3 tokens
    assert batch.doc_index.tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert batch.doc_fields["chosen"].tolist() == [1.0, 0.0]
    assert batch.cu_seqlens.tolist()[:6] == [0, 3, 5, 8, 9, 9]
    assert (len(batch.cu_seqlens) - 1) % CU_SEQLENS_MULTIPLE == 0
    assert (batch.max_seqlen, batch.num_docs, batch.num_real_tokens) == (3, 2, 5)
    with pytest.raises(ValueError, match="exceeds max_doc_tokens"):
        pack([[a]], pad_id=0, pad_to=8, max_doc_tokens=2)
    mask = batch.block_causal_mask()[0, 0]
    assert mask[4, 3] and not mask[3, 2] and not mask[1, 2]  # within doc, causal; never across docs


def test_plan_fills_bins_within_budget_and_keeps_groups_whole():
    groups = [[Sample([1] * n, [False] * n)] for n in (700, 300, 500, 200, 100, 900, 250)]
    plans = plan_micro_batches(groups, 1000)
    assert sorted(i for p in plans for i in p) == list(range(7))
    assert all(sum(len(groups[i][0]) for i in p) <= 1000 for p in plans)
    assert len(plans) == 3  # 2950 tokens: first-fit decreasing needs the minimum
    with pytest.raises(ValueError, match="over the micro-batch budget"):
        plan_micro_batches([[Sample([1] * 600, [False] * 600), Sample([1] * 600, [False] * 600)]], 1000)


@pytest.mark.parametrize("keep_logits", [False, True])
def test_chunked_logprobs_match_log_softmax_with_gradients(keep_logits):
    g = torch.Generator().manual_seed(0)
    h = torch.randn(37, 16, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(50, 16, dtype=torch.float64, generator=g, requires_grad=True)
    t = torch.randint(0, 50, (37,), generator=g)
    upstream = torch.randn(37, dtype=torch.float64, generator=g)
    got = token_logprobs(h, w, t, chunk=8, keep_logits=keep_logits)
    ref = torch.log_softmax(h @ w.t(), -1).gather(1, t[:, None]).squeeze(1)
    assert torch.allclose(got, ref, atol=1e-12)
    gh, gw = torch.autograd.grad((got * upstream).sum(), (h, w))
    rh, rw = torch.autograd.grad((ref * upstream).sum(), (h, w))
    assert torch.allclose(gh, rh, atol=1e-12) and torch.allclose(gw, rw, atol=1e-12)


def test_packed_forward_equals_separate_forwards_and_does_not_leak(tiny_model_dir):
    from stages.lm.engine.model import PackedCausalLM, set_attention
    from stages.lm.loading import load_model

    model = load_model(tiny_model_dir, device="cpu", dtype="float32")
    g = torch.Generator().manual_seed(0)
    docs = [torch.randint(0, 5000, (n,), generator=g).tolist() for n in (6, 9, 4)]
    batch = pack([[Sample(d, [False] + [True] * (len(d) - 1))] for d in docs], pad_id=0, pad_to=24)
    packed = PackedCausalLM(model)
    with torch.no_grad():
        got = packed(batch)
        set_attention(model, "sdpa")
        for d, (start, end) in zip(docs, [(0, 6), (6, 15), (15, 19)]):
            x = torch.tensor([d])
            ref = model(x).logits[0].log_softmax(-1)[:-1].gather(1, x[0, 1:, None]).squeeze(1)
            assert torch.allclose(got[start:end - 1], ref, atol=1e-5)
        set_attention(model, "lm_packed")
        changed = [list(reversed(docs[0]))] + docs[1:]  # a different first document ...
        batch2 = pack([[Sample(d, [False] + [True] * (len(d) - 1))] for d in changed], pad_id=0, pad_to=24)
        got2 = packed(batch2)
    assert torch.equal(got[6:19], got2[6:19])  # ... leaves the later documents' log-probs untouched
