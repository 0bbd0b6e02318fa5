"""The stage's data flow through the real engine: the loss terms ``Trainer.train_step`` reports for a rollout batch
equal the formulas computed directly from a plain (unpacked) forward pass of the same tiny model, on the first
update (ratios 1) and on a second one after the weights moved (ratios away from 1).

This checks what the hand-built test cannot: that both views' response tokens are aligned through prompt
encoding, scoring, packing and the engine's shifted targets.
"""

from __future__ import annotations

import random

import pytest
import torch

from stages.pi_distill import rollout as R
from stages.pi_distill.objective import OPSDObjective, PiDistillObjective
from stages.pi_distill.prompts import PromptRow

G, BETA = 2, 0.5
REWARDS = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


@pytest.fixture(scope="module")
def trainer(tmp_path_factory, fixtures_dir):
    from stages.lm.engine.config import TrainConfig
    from stages.lm.engine.trainer import Trainer

    tmp = tmp_path_factory.mktemp("pi-engine")
    config = TrainConfig(lr=3e-3, schedule="constant", warmup_ratio=0.0, micro_batch_tokens=256, max_length=64,
                         precision="fp32", fsdp="off", grad_clip=None, weight_decay=0.0)
    t = Trainer(config, fixtures_dir / "tiny-qwen3", tmp / "run", total_steps=10, checkpoint_root=tmp / "ck")
    yield t
    t.close()


def _batch(seed: int) -> tuple[list[R.Encoded], list[R.Rollout]]:
    rng = random.Random(seed)
    prompts = []
    for p in range(len(REWARDS) // G):
        row = PromptRow(p, "math:GSM8K", [], [], "reference_solution", "1")
        student = [rng.randrange(1000, 9000) for _ in range(rng.randrange(3, 6))]
        teacher = student + [rng.randrange(1000, 9000) for _ in range(rng.randrange(4, 9))]
        prompts.append(R.Encoded(row, student, teacher))
    rollouts = [R.Rollout(i // G, [rng.randrange(1000, 9000) for _ in range(rng.randrange(2, 6))], "", "stop",
                          reward=r) for i, r in enumerate(REWARDS)]
    return prompts, rollouts


def _direct_logprobs(trainer, prompt: list[int], response: list[int]) -> torch.Tensor:
    with torch.no_grad(), trainer.generation_model() as model:
        ids = torch.tensor([prompt + response])
        logits = model(input_ids=ids).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    n = len(response)
    return logp[len(prompt) - 1:-1].gather(1, ids[0, len(prompt):, None]).squeeze(1)[-n:]


def _surrogate(ratio: torch.Tensor, adv: float, eps: float) -> torch.Tensor:
    return -torch.minimum(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv)


def _advantages(rewards: list[float], gaps: list[float]) -> list[float]:
    out = []
    for g in range(0, len(rewards), G):
        rs = torch.tensor(rewards[g:g + G], dtype=torch.float64)
        a = (rs - rs.mean()) / (rs.std() + 1e-6)
        out += [float(x) - BETA * gap for x, gap in zip(a, gaps[g:g + G])]
    return out


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_pi_distill_update_reports_the_direct_terms(trainer, alpha):
    prompts, rollouts = _batch(int(alpha * 10))
    old_t = [_direct_logprobs(trainer, prompts[r.prompt].teacher, r.token_ids) for r in rollouts]
    old_s = [_direct_logprobs(trainer, prompts[r.prompt].student, r.token_ids) for r in rollouts]
    pairs = R.score_views(trainer, prompts, rollouts)
    for r, t, s in zip(rollouts, old_t, old_s):  # the engine's scoring is the plain forward's
        assert torch.allclose(torch.tensor(r.lp_teacher, dtype=torch.float64), t, atol=1e-4)
        assert torch.allclose(torch.tensor(r.lp_student, dtype=torch.float64), s, atol=1e-4)
    R.shape(rollouts, G, BETA, "teacher", drop_equal=False)
    adv = _advantages(REWARDS, [float(t.sum() - s.sum()) for t, s in zip(old_t, old_s)])
    assert [r.shaped for r in rollouts] == pytest.approx(adv, abs=1e-4)
    groups = [g for _, g in R.training_groups("pi-distill", rollouts, pairs)]
    objective = PiDistillObjective(alpha=alpha, clip=0.2, student_clip=0.2)
    n = sum(len(r.token_ids) for r in rollouts)

    for update in range(2):
        new_t = [_direct_logprobs(trainer, prompts[r.prompt].teacher, r.token_ids) for r in rollouts]
        new_s = [_direct_logprobs(trainer, prompts[r.prompt].student, r.token_ids) for r in rollouts]
        teacher = sum(_surrogate(torch.exp(t - o), a, 0.2).sum() for t, o, a in zip(new_t, old_t, adv)) / n
        student = sum(_surrogate(torch.exp(s - t), a, 0.2).sum() for t, s, a in zip(new_t, new_s, adv)) / n
        kl = sum((t - s).sum() for t, s in zip(new_t, new_s)) / n
        record = trainer.train_step(groups, objective)
        assert record["units"] == n
        assert record["teacher_loss"] == pytest.approx(float(teacher), rel=1e-4, abs=1e-6)
        assert record["student_loss"] == pytest.approx(float(student), rel=1e-4, abs=1e-6)
        assert record["loss"] == pytest.approx(float(alpha * teacher + (1 - alpha) * student), rel=1e-4, abs=1e-6)
        assert record["kl_teacher_student"] == pytest.approx(float(kl), rel=1e-4, abs=1e-6)
        if update == 1:  # the weights moved: the teacher's ratio is no longer 1
            assert max(float((t - o).abs().max()) for t, o in zip(new_t, old_t)) > 1e-3


def test_opsd_update_reports_the_direct_term(trainer):
    prompts, rollouts = _batch(7)
    old_s = [_direct_logprobs(trainer, prompts[r.prompt].student, r.token_ids) for r in rollouts]
    old_t = [_direct_logprobs(trainer, prompts[r.prompt].teacher, r.token_ids) for r in rollouts]
    pairs = R.score_views(trainer, prompts, rollouts)
    R.shape(rollouts, G, BETA, "student", drop_equal=False)
    adv = _advantages(REWARDS, [float(s.sum() - t.sum()) for t, s in zip(old_t, old_s)])
    assert [r.shaped for r in rollouts] == pytest.approx(adv, abs=1e-4)
    groups = [g for _, g in R.training_groups("opsd", rollouts, pairs)]
    assert all(len(g) == 1 and g[0].doc_fields["teacher"] == 0.0 for g in groups)
    n = sum(len(r.token_ids) for r in rollouts)
    for _ in range(2):
        new_s = [_direct_logprobs(trainer, prompts[r.prompt].student, r.token_ids) for r in rollouts]
        loss = sum(_surrogate(torch.exp(s - o), a, 0.2).sum() for s, o, a in zip(new_s, old_s, adv)) / n
        record = trainer.train_step(groups, OPSDObjective(clip=0.2))
        assert record["loss"] == pytest.approx(float(loss), rel=1e-4, abs=1e-6)
