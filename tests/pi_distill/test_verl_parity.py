"""Parity of the verl engine with the native engine (the CPU reference): on the same tiny model, prompts, rollouts
and seed, π-Distill's per-token terms on verl equal the native engine's for alpha in {0, 0.5, 1}, with and without
beta (and OPSD): GRPO advantages, the beta shaping, KL(T||S) per token, the teacher PG term, the student's
importance-weighted term, each row kind's share of the loss, and the update's total loss and gradient norm.

The verl side is verl's real actor worker (FSDP2 on the CPU platform shim) driven by the stage's
``PiDistillTrainer`` (its ``_update_actor`` end to end: other-view rows, verl's old-log-prob pass, shaping,
duplicated rows, verl's stock update) and verl's own loss function (``core_algos.compute_policy_loss_vanilla``);
the native side is the stage's native functions and one ``Trainer.train_step``. Both run in one process of their
own (``verl_parity_probe``), once for the module. What does not run on a CPU: the vLLM rollout (verl 0.9.1
generates only through vLLM/SGLang/TRT-LLM server replicas, and its weight sync to them uses CUDA IPC), so the
responses come from the native sampler, and Ray's process boundary (the worker is called directly).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.pi_distill import verl_parity_probe as probe_module
from tests.pi_distill.conftest import REPO

pytest.importorskip("verl")

CASES = [(variant, alpha, beta) for variant, alpha, beta, _ in probe_module.CONFIGS]
UPDATED = sorted(probe_module.UPDATED)  # the whole update step too: both row kinds (pi-distill), one kind (OPSD)
TOL = {"rel": 1e-4, "abs": 2e-5}


@pytest.fixture(scope="module")
def probe(tmp_path_factory, fixtures_dir):
    out = tmp_path_factory.mktemp("verl-parity") / "terms.json"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    proc = subprocess.run([sys.executable, "-m", "tests.pi_distill.verl_parity_probe", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {(r["variant"], r["alpha"], r["beta"]): r for r in json.loads(out.read_text())}


def close(a, b) -> None:
    assert len(a) == len(b), (len(a), len(b))
    assert list(a) == pytest.approx(list(b), **TOL)


def test_both_engines_see_the_same_prompts_and_log_probs(probe):
    for case in probe.values():
        assert case["verl"]["same_prompt_ids"], "verl's tokenization of a prompt differs from the native engine's"
    r = probe[("pi-distill", 0.5, 0.5)]
    close(r["verl"]["lp_sampler"], r["native"]["lp_teacher"])  # verl's old-log-prob pass, sampled view
    close(r["verl"]["lp_other"], r["native"]["lp_student"])  # ... and the other view's rows
    o = probe[("opsd", 0.5, 0.5)]
    close(o["verl"]["lp_sampler"], o["native"]["lp_student"])
    close(o["verl"]["lp_other"], o["native"]["lp_teacher"])


@pytest.mark.parametrize("variant,alpha,beta", CASES)
def test_per_token_terms_match(probe, variant, alpha, beta):
    r = probe[(variant, alpha, beta)]
    n, v = r["native"], r["verl"]
    close(v["advantage"], n["advantage"])  # verl's GRPO estimator vs the native one
    close(v["shaped"], n["shaped"])  # beta shaping from verl's old-log-prob passes
    assert v["keep"] == n["keep"]
    assert (beta == 0) or any(not k for k in n["keep"]), "the dropping case must drop a group"
    close(v["kl"], n["kl"])  # per token log pi_sampler - log pi_other: KL(T||S) for pi-distill
    close(v["sampler_term"], n["sampler_term"])  # teacher PG term (OPSD: the student's GRPO term)
    assert any(abs(x) > 1e-3 for x in n["sampler_term"] + n["student_term"]), "the terms must not all vanish"
    if variant == "pi-distill":
        close(v["student_term"], n["student_term"])  # student term: rho = pi_S / sg(pi_T), clipped


@pytest.mark.parametrize("variant,alpha,beta", CASES)
def test_row_kinds_carry_the_alpha_mix(probe, variant, alpha, beta):
    """Each verl update row's per-token loss, divided by the number of row kinds (verl's token-mean counts both),
    is alpha x the teacher term (teacher rows) or (1 - alpha) x the student term (student rows)."""
    r = probe[(variant, alpha, beta)]
    n, v = r["native"], r["verl"]
    own = [c for c, other in zip(v["contribution"], v["contribution_is_other"]) if not other]
    twin = [c for c, other in zip(v["contribution"], v["contribution_is_other"]) if other]
    if variant == "opsd":
        assert v["k"] == 1 and not twin
        close(own, n["sampler_term"])
        return
    assert v["k"] == (2 if 0 < alpha < 1 else 1)
    close(own, [alpha * x for x in n["sampler_term"]] if alpha > 0 else [])
    close(twin, [(1 - alpha) * x for x in n["student_term"]] if alpha < 1 else [])


@pytest.mark.parametrize("variant,alpha,beta", UPDATED)
def test_the_update_step_matches(probe, variant, alpha, beta):
    """verl's actor update (``PiDistillTrainer._update_actor`` on verl's worker) reports the native step's loss and
    gradient norm: the same objective, differentiated by both engines."""
    r = probe[(variant, alpha, beta)]
    rec, m = r["native"]["record"], r["verl"]["metrics"]
    assert m["pi_distill/skipped_update"] == 0.0
    assert m["actor/pg_loss"] == pytest.approx(rec["loss"], **TOL)
    assert m["actor/grad_norm"] == pytest.approx(rec["grad_norm"], rel=1e-3)
    assert rec["grad_norm"] > 0
    if variant == "pi-distill":
        assert m["pi_distill/teacher_loss"] == pytest.approx(rec["teacher_loss"], **TOL)
        assert m["pi_distill/student_loss"] == pytest.approx(rec["student_loss"], **TOL)
    else:
        assert m["pi_distill/student_loss"] == pytest.approx(rec["student_loss"], **TOL)
