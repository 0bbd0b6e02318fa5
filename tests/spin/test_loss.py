"""The SPIN loss the engine optimises equals a direct computation of the SPIN/DPO formula on a hand-built batch.

The direct side uses nothing of the engine: transformers' ordinary forward pass over each whole sequence, a
log-softmax, the log-probs of the response tokens summed, then margin = (log p(chosen) - ref(chosen)) -
(log p(rejected) - ref(rejected)), loss = mean over pairs of -log σ(β·margin) (or relu(1 - β·margin)). The
engine side is the stage's own path: pairs built by ``stages.spin.pairs.pair_group`` with stored reference sums,
packed into several micro-batches (the budget holds one pair), through ``Trainer.train_step`` with ``SPINLoss``.
"""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F

BETA = 0.3


def _pairs(seed: int = 1) -> list[tuple[list[int], list[int], list[int], float, float]]:
    rng = random.Random(seed)
    rows = []
    for p_len, c_len, r_len in [(9, 14, 6), (12, 5, 11), (7, 20, 3)]:
        prompt = [rng.randrange(100, 5000) for _ in range(p_len)]
        chosen = [rng.randrange(100, 5000) for _ in range(c_len)]
        rejected = [rng.randrange(100, 5000) for _ in range(r_len)]
        rows.append((prompt, chosen, rejected, -11.5 * c_len + rng.uniform(-3, 3), -11.5 * r_len + rng.uniform(-3, 3)))
    return rows


def _direct_logp(model, prompt: list[int], response: list[int]) -> float:
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    logp = F.log_softmax(logits[:-1], dim=-1).gather(1, ids[0, 1:, None]).squeeze(1)
    return float(logp[len(prompt) - 1:].sum())  # predictions of the response tokens


def _direct(model, pairs, loss_type: str) -> dict[str, float]:
    losses, margins, gaps = [], [], []
    for prompt, chosen, rejected, ref_c, ref_r in pairs:
        pc, pr = _direct_logp(model, prompt, chosen), _direct_logp(model, prompt, rejected)
        margin = (pc - ref_c) - (pr - ref_r)
        z = BETA * margin
        losses.append(math.log1p(math.exp(-z)) if loss_type == "sigmoid" else max(0.0, 1 - z))
        margins.append(z)
        gaps.append(pc - pr)
    n = len(pairs)
    return {"loss": sum(losses) / n, "reward_margin": sum(margins) / n, "logp_gap": sum(gaps) / n}


@pytest.fixture(scope="module")
def engine(tiny_model_dir, tmp_path_factory):
    from stages.lm.engine import TrainConfig
    from stages.lm.engine.trainer import Trainer

    # lr 1e-12: Adam moves each weight by ~1e-12 per step, so the second loss type sees the same policy
    config = TrainConfig(lr=1e-12, precision="fp32", max_length=64, micro_batch_tokens=64, checkpoint_every=0)
    run = tmp_path_factory.mktemp("loss-run")
    # on the CPU wherever the test runs: the check is of the formula, not of a GPU's rounding
    trainer = Trainer(config, tiny_model_dir, run, total_steps=3, checkpoint_root=run / "ckpt", device="cpu")
    yield trainer
    trainer.close()


@pytest.fixture(scope="module")
def reference_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()


@pytest.mark.parametrize("loss_type", ["sigmoid", "hinge"])
def test_engine_loss_equals_the_formula(engine, reference_model, loss_type):
    from stages.spin.loss import SPINLoss
    from stages.spin.pairs import pair_group

    pairs = _pairs()
    groups = [pair_group(p, c, r, rc, rr) for p, c, r, rc, rr in pairs]
    record = engine.train_step(groups, SPINLoss(beta=BETA, loss_type=loss_type))
    want = _direct(reference_model, pairs, loss_type)
    assert record["micro_batches"] == 3  # one pair per forward pass: the loss is normalised over the global batch
    assert record["units"] == 3
    for key, value in want.items():
        assert record[key] == pytest.approx(value, rel=1e-4, abs=1e-4), key
    assert record["loss"] > 0.05  # the stored references are far from the policy: a loss that can fail


def test_reference_sums_from_the_trainer_make_the_first_loss_log_2(engine):
    """Scored by the policy itself (the start of an iteration), every margin is 0 and the loss is log 2."""
    from stages.spin.loss import SPINLoss
    from stages.spin.pairs import pair_group, response_logprob_sums

    pairs = _pairs(seed=2)
    plain = [pair_group(p, c, r) for p, c, r, _, _ in pairs]
    sums = response_logprob_sums(engine.logprobs(plain), plain)
    groups = [pair_group(p, c, r, a, b) for (p, c, r, _, _), (a, b) in zip(pairs, sums)]
    for group, (a, b) in zip(groups, sums):
        for sample, ref in zip(group, (a, b)):
            kept = [v for v, m in zip(sample.token_fields["ref_logprobs"], sample.loss_mask) if m]
            assert sum(kept) == pytest.approx(ref) and a < 0 and b < 0
    record = engine.train_step(groups, SPINLoss(beta=BETA))
    assert record["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert record["reward_margin"] == pytest.approx(0.0, abs=1e-4)
