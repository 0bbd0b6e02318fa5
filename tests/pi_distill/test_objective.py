"""Each loss term against a direct computation of its formula, on a hand-built batch that goes through the stage's
own shaping, pairing and the engine's packing: π-Distill for alpha in {0, 0.5, 1} with and without the beta term,
and OPSD. The direct side never calls the stage or the engine: it works on per-response lists.

Formulas (methods reference §5): A_i = (r_i - mean_g r) / (std_g r + 1e-6) (unbiased std over the group);
A'_i = A_i - beta * sum_t (log pi_sampler,old - log pi_other,old); teacher term per token
-min(rho A', clip(rho, 1 +- eps) A') with rho = pi_T / pi_T,old; student term the same with
rho = pi_S / sg[pi_T] and its own clip; loss = (alpha * sum teacher + (1 - alpha) * sum student) / teacher tokens.
OPSD: the teacher term's form on the student's own samples with rho = pi_S / pi_S,old.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from stages.lm.engine.packing import pack
from stages.pi_distill import rollout as R
from stages.pi_distill.objective import OPSDObjective, PiDistillObjective
from stages.pi_distill.prompts import PromptRow

G = 2
REWARDS = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]  # three groups; the last has no variance
RESPONSE_LENGTHS = [3, 2, 4, 1, 2, 3]
TEACHER_PROMPT = [5, 6, 4]
STUDENT_PROMPT = [2, 3, 2]
EPS, STUDENT_EPS = 0.2, 0.15
TOL = {"rtol": 1e-6, "atol": 1e-7}  # the engine's packed token fields (advantages, old log-probs) are float32


def _case(seed: int = 0):
    rng = random.Random(seed)
    prompts = []
    for p, (tl, sl) in enumerate(zip(TEACHER_PROMPT, STUDENT_PROMPT)):
        row = PromptRow(p, "math:GSM8K", [{"role": "user", "content": "q"}], [{"role": "user", "content": "q+I"}],
                        "reference_solution", '{"answer": "1"}')
        prompts.append(R.Encoded(row, [rng.randrange(10, 99) for _ in range(sl)], [rng.randrange(10, 99) for _ in range(tl)]))
    rollouts, old_t, old_s, new_t, new_s = [], [], [], [], []
    for i, (reward, n) in enumerate(zip(REWARDS, RESPONSE_LENGTHS)):
        r = R.Rollout(i // G, [rng.randrange(100, 199) for _ in range(n)], "text", "stop", reward=reward)
        old_t.append([-rng.uniform(0.1, 3.0) for _ in range(n)])
        old_s.append([-rng.uniform(0.1, 3.0) for _ in range(n)])
        # new log-probs near the old ones, some far enough to be clipped
        new_t.append([lp + rng.uniform(-0.4, 0.4) for lp in old_t[-1]])
        new_s.append([lp + rng.uniform(-0.6, 0.6) for lp in new_t[-1]])
        r.lp_teacher, r.lp_student = old_t[-1], old_s[-1]
        rollouts.append(r)
    return prompts, rollouts, old_t, old_s, new_t, new_s


def _stage_batch(variant: str, beta: float, drop: bool, seed: int = 0):
    prompts, rollouts, old_t, old_s, new_t, new_s = _case(seed)
    sampler = "teacher" if variant == "pi-distill" else "student"
    R.shape(rollouts, G, beta, sampler, drop)
    pairs = []
    for r in rollouts:  # what score_views attaches: full-length log-prob lists aligned with input_ids
        teacher, student = R.pair(prompts[r.prompt], r)
        teacher.token_fields["logprobs"] = [0.0] * (len(teacher) - len(r.token_ids)) + r.lp_teacher
        student.token_fields["logprobs"] = [0.0] * (len(student) - len(r.token_ids)) + r.lp_student
        pairs.append([teacher, student])
    groups = R.training_groups(variant, rollouts, pairs)
    batch = pack([g for _, g in groups], pad_id=0)
    # leaves: the new log-probs of each kept response, per view; placed where the packed row predicts them
    kept = [i for i, r in enumerate(rollouts) if r.keep]
    leaves_t = [torch.tensor(new_t[i], dtype=torch.float64, requires_grad=True) for i in kept]
    leaves_s = [torch.tensor(new_s[i], dtype=torch.float64, requires_grad=True) for i in kept]
    cursor = 0
    filler = torch.full((batch.num_tokens,), -5.0, dtype=torch.float64)
    index, values = [], []
    for (_, views), lt, ls in zip(groups, leaves_t, leaves_s):
        for s in views:
            n_resp = len(lt)
            start = cursor + len(s) - n_resp - 1  # target of position p is token p + 1
            index.append(torch.arange(start, start + n_resp))
            values.append(lt if s.doc_fields["teacher"] == 1.0 else ls)
            cursor += len(s)
    logp = filler.index_put((torch.cat(index),), torch.cat(values))
    return batch, logp, kept, leaves_t, leaves_s, (old_t, old_s)


def _advantages(beta: float, sampler: str, old_t, old_s) -> list[float]:
    out = []
    for g in range(0, len(REWARDS), G):
        rs = REWARDS[g:g + G]
        m = sum(rs) / G
        std = math.sqrt(sum((r - m) ** 2 for r in rs) / (G - 1))
        for i in range(g, g + G):
            a = (REWARDS[i] - m) / (std + 1e-6)
            gap = sum(old_t[i]) - sum(old_s[i])
            out.append(a - beta * (gap if sampler == "teacher" else -gap))
    return out


def _surrogate(ratio: torch.Tensor, adv: float, eps: float) -> torch.Tensor:
    return -torch.minimum(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv)


@pytest.mark.parametrize("beta", [0.0, 0.3])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("drop", [False, True])
def test_pi_distill_terms_match_their_formulas(alpha, beta, drop):
    batch, logp, kept, leaves_t, leaves_s, (old_t, old_s) = _stage_batch("pi-distill", beta, drop)
    assert kept == ([0, 1, 2, 3] if drop else list(range(6)))
    objective = PiDistillObjective(alpha=alpha, clip=EPS, student_clip=STUDENT_EPS)
    n_tokens = sum(RESPONSE_LENGTHS[i] for i in kept)
    assert objective.units(batch) == n_tokens
    out = objective(logp, batch)

    adv = _advantages(beta, "teacher", old_t, old_s)
    direct_t = [leaf.detach().clone().requires_grad_(True) for leaf in leaves_t]
    direct_s = [leaf.detach().clone().requires_grad_(True) for leaf in leaves_s]
    teacher = sum(_surrogate(torch.exp(t - torch.tensor(old_t[i], dtype=torch.float64)), adv[i], EPS).sum()
                  for i, t in zip(kept, direct_t))
    student = sum(_surrogate(torch.exp(s - t.detach()), adv[i], STUDENT_EPS).sum()
                  for i, t, s in zip(kept, direct_t, direct_s))
    loss = (alpha * teacher + (1 - alpha) * student) / n_tokens

    assert torch.isclose(out.loss / n_tokens, loss, **TOL)
    assert torch.isclose(out.metrics["teacher_loss"] / n_tokens, teacher.detach() / n_tokens, **TOL)
    assert torch.isclose(out.metrics["student_loss"] / n_tokens, student.detach() / n_tokens, **TOL)
    kl = sum((t - s).sum() for t, s in zip(direct_t, direct_s)).detach() / n_tokens
    assert torch.isclose(out.metrics["kl_teacher_student"] / n_tokens, kl, **TOL)
    ratios = torch.cat([torch.exp(t - torch.tensor(old_t[i], dtype=torch.float64)) for i, t in zip(kept, direct_t)])
    rhos = torch.cat([torch.exp(s - t) for t, s in zip(direct_t, direct_s)]).detach()
    assert 0 < float(((ratios - 1).abs() > EPS).sum()) < n_tokens  # the case exercises clipping, not all of it
    assert float(out.metrics["teacher_clip_fraction"]) == float(((ratios - 1).abs() > EPS).sum())
    assert float(out.metrics["student_clip_fraction"]) == float(((rhos - 1).abs() > STUDENT_EPS).sum())

    (out.loss / n_tokens).backward()
    loss.backward()
    for a, b in zip(leaves_t + leaves_s, direct_t + direct_s):
        assert torch.allclose(a.grad, b.grad, **TOL)
    if alpha == 1.0:
        assert all(float(s.grad.abs().sum()) == 0.0 for s in leaves_s)
    if alpha == 0.0:  # the student's ratio stops the gradient at the teacher view
        assert all(float(t.grad.abs().sum()) == 0.0 for t in leaves_t)


def test_beta_term_changes_the_advantages_by_the_log_ratio_sum():
    _, r0, *_ = _case()
    _, r1, old_t, old_s, _, _ = _case()
    R.shape(r0, G, 0.0, "teacher", False)
    R.shape(r1, G, 0.3, "teacher", False)
    for a, b, ot, os_ in zip(r0, r1, old_t, old_s):
        assert b.shaped == pytest.approx(a.shaped - 0.3 * (sum(ot) - sum(os_)), abs=1e-12)
        assert a.shaped == a.advantage


@pytest.mark.parametrize("beta", [0.0, 0.3])
def test_opsd_term_matches_its_formula(beta):
    batch, logp, kept, _, leaves_s, (old_t, old_s) = _stage_batch("opsd", beta, False)
    objective = OPSDObjective(clip=EPS)
    n_tokens = sum(RESPONSE_LENGTHS)
    assert objective.units(batch) == n_tokens and batch.num_docs == len(REWARDS)
    out = objective(logp, batch)
    adv = _advantages(beta, "student", old_t, old_s)
    direct = [leaf.detach().clone().requires_grad_(True) for leaf in leaves_s]
    loss = sum(_surrogate(torch.exp(s - torch.tensor(old_s[i], dtype=torch.float64)), adv[i], EPS).sum()
               for i, s in zip(kept, direct)) / n_tokens
    assert torch.isclose(out.loss / n_tokens, loss, **TOL)
    (out.loss / n_tokens).backward()
    loss.backward()
    for a, b in zip(leaves_s, direct):
        assert torch.allclose(a.grad, b.grad, **TOL)
