"""Known answers of the representations suite's metrics, on the CPU: CKA is 1 for a representation against itself
and against an orthogonal transform of itself and near 0 against independent noise (and not 1 under a non-isotropic
transform, so the check can fail); probes find a planted linear signal and fall to chance with shuffled labels; the
weight-delta figures equal those computed from numpy's exact SVD on small matrices, and the randomized path is within
1% on the top singular values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stages.evaluator.metrics.cka import debiased_linear_cka, linear_cka
from stages.evaluator.metrics.probes import fit_logistic, fold_ids, probe_layer
from stages.evaluator.metrics.weight_delta import delta_metrics, randomized_svd, singular_values


def _orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def test_cka_of_a_representation_with_itself_and_a_rotation_of_it_is_one():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 40)) @ rng.standard_normal((40, 40))  # correlated features
    rotated = 3.7 * x @ _orthogonal(40, rng) + 5.0  # rotation, isotropic scale and a shift
    for other in (x, rotated):
        assert linear_cka(x, other) == pytest.approx(1.0, abs=1e-10)
        assert debiased_linear_cka(x, other) == pytest.approx(1.0, abs=1e-10)
    stretched = x * np.linspace(0.1, 10.0, 40)  # not orthogonal: CKA must notice
    assert linear_cka(x, stretched) < 0.95


def test_cka_with_independent_noise_is_near_zero_and_debiasing_removes_the_bias():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2000, 50)), rng.standard_normal((2000, 50))
    plain, debiased = linear_cka(x, y), debiased_linear_cka(x, y)
    assert 0.0 < plain < 0.05  # biased upwards by about sqrt(p q) / n = 0.025
    assert abs(debiased) < 0.01 and abs(debiased) < plain


def test_cka_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same inputs"):
        linear_cka(np.ones((5, 3)), np.ones((6, 3)))


def _statements(n_questions: int, d: int, rng: np.random.Generator, signal: float):
    """Pairs of rows (true, false) per question: a shared question vector plus a planted 'truth' direction."""
    direction = rng.standard_normal(d)
    rows, labels, groups = [], [], []
    for q in range(n_questions):
        base = rng.standard_normal(d) * 3.0
        for label in (1, 0):
            rows.append(base + rng.standard_normal(d) + signal * (2 * label - 1) * direction / np.sqrt(d))
            labels.append(label)
            groups.append(q)
    return np.asarray(rows), labels, groups


def test_probe_finds_a_planted_signal_and_reaches_chance_on_shuffled_labels():
    rng = np.random.default_rng(2)
    x, labels, groups = _statements(150, 32, rng, signal=6.0)
    folds = fold_ids(groups, 5, seed=0)
    assert all(len(set(folds[np.asarray(groups) == q])) == 1 for q in set(groups))  # a question stays in one fold
    s = probe_layer(x, labels, folds, l2=1e-3, seed=0, device="cpu")
    assert s.base > 0.9
    assert abs(s.control - 0.5) < 0.1  # trained on shuffled labels, tested on the true ones
    shuffled = list(np.random.default_rng(3).permutation(labels))
    assert abs(probe_layer(x, shuffled, folds, l2=1e-3, seed=0, device="cpu").base - 0.5) < 0.1


@pytest.mark.parametrize("n,d", [(200, 20), (60, 300)])  # the d x d and the n x n (Woodbury) Newton steps
def test_logistic_fit_reaches_the_optimum(n, d):
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.standard_normal((n, d)))
    y = torch.tensor((rng.random(n) < 0.5).astype(float))
    w = fit_logistic(x, y, l2=1e-2).requires_grad_(True)
    xa = torch.cat([x, torch.ones(n, 1, dtype=x.dtype)], dim=1)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(xa @ w, y) + 0.5e-2 * (w @ w)
    loss.backward()
    assert float(w.grad.abs().max()) < 1e-8


def test_probe_transfer_to_an_intact_and_to_a_scrambled_model():
    rng = np.random.default_rng(4)
    x, labels, groups = _statements(120, 24, rng, signal=6.0)
    folds = fold_ids(groups, 4, seed=1)
    same = probe_layer(x, labels, folds, 1e-3, 0, post=x.copy(), device="cpu")
    assert same.transfer == same.base and same.agreement == 1.0 and same.post == same.base
    rotated = x @ _orthogonal(24, rng)  # information kept, readout moved
    moved = probe_layer(x, labels, folds, 1e-3, 0, post=rotated, device="cpu")
    assert moved.post > 0.85  # still decodable after retraining
    assert moved.transfer < moved.post - 0.2  # but the base's readout no longer reads it


def _exact(a: np.ndarray, k: int):
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return u[:, :k], s, vt[:k].T


def _low_rank_plus_noise(m: int, n: int, rank: int, rng: np.random.Generator) -> np.ndarray:
    u, v = _orthogonal(m, rng)[:, :rank], _orthogonal(n, rng)[:, :rank]
    return (u * np.geomspace(10.0, 1.0, rank)) @ v.T + 0.01 * rng.standard_normal((m, n))


@pytest.mark.parametrize("shape", [(48, 80), (90, 40)])
def test_weight_delta_figures_equal_numpy_exact_svd(shape):
    rng = np.random.default_rng(5)
    m, n = shape
    k = 6
    w = _low_rank_plus_noise(m, n, k, rng) + 0.1 * rng.standard_normal((m, n))  # top-k subspaces well separated
    delta = _low_rank_plus_noise(m, n, k, rng) * 0.05
    got = delta_metrics(torch.tensor(w), torch.tensor(w + delta), top_k=k, exact=True, power_iterations=6)
    d = (torch.tensor(w + delta, dtype=torch.float32) - torch.tensor(w, dtype=torch.float32)).double().numpy()
    ud, s, vd = _exact(d, k)
    uw, sw, vw = _exact(w.astype(np.float32).astype(np.float64), k)
    fro = np.linalg.norm(d)
    p = s / s.sum()
    assert np.allclose(singular_values(torch.tensor(d)).numpy(), s, rtol=1e-9, atol=1e-9 * s[0])
    want = {
        "fro": fro, "rel_fro": fro / np.linalg.norm(w.astype(np.float32)), "spectral": s[0],
        "rel_spectral": s[0] / sw[0], "stable_rank": fro**2 / s[0] ** 2,
        "effective_rank": math.exp(-(p * np.log(p)).sum()), "energy_top_k": (s[:k] ** 2).sum() / fro**2,
        "overlap_left": np.sum((ud.T @ uw) ** 2) / k, "overlap_right": np.sum((vd.T @ vw) ** 2) / k,
    }
    for key, value in want.items():  # vectors come from the randomized path: overlaps agree to 1e-4
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-4 if "overlap" in key else 1e-9), key
    assert got["effective_rank_ratio"] == pytest.approx(want["effective_rank"] / min(m, n), rel=1e-4)
    assert got["overlap_left_chance"] == k / m and got["max_rank"] == min(m, n)


def test_randomized_svd_is_within_one_percent_on_the_top_singular_values():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((400, 300)) * np.geomspace(1.0, 0.05, 300)  # a slowly decaying spectrum
    exact = np.linalg.svd(a, compute_uv=False)
    _, s, _ = randomized_svd(torch.tensor(a, dtype=torch.float32), k=16, oversample=16, power_iterations=4)
    assert np.max(np.abs(s.double().numpy() - exact[:16]) / exact[:16]) < 0.01
    fast = delta_metrics(torch.zeros(400, 300), torch.tensor(a), top_k=16, exact=False)
    slow = delta_metrics(torch.zeros(400, 300), torch.tensor(a), top_k=16, exact=True)
    assert fast["effective_rank"] is None and slow["effective_rank"] > 1
    for key in ("spectral", "stable_rank", "energy_top_k"):
        assert fast[key] == pytest.approx(slow[key], rel=0.01), key


def test_an_untouched_matrix_has_zero_delta_and_no_rank():
    w = torch.randn(20, 30)
    got = delta_metrics(w, w.clone(), top_k=4)
    assert got["fro"] == 0.0 and got["spectral"] == 0.0 and got["effective_rank"] is None
