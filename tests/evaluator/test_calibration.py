"""ECE (15 equal-width bins), adaptive ECE, Brier and NLL against direct computations."""

from __future__ import annotations

import math
import random

import pytest

from stages.evaluator.metrics.calibration import adaptive_ece, calibration, choice_probabilities, ece, softmax


def _reference_ece(conf, correct, bins=15):
    """Guo et al.'s definition written out with explicit bin edges: B_m = {i : (m-1)/M < conf_i <= m/M}."""
    edges = [m / bins for m in range(bins + 1)]
    total = 0.0
    for m in range(bins):
        lo, hi = edges[m], edges[m + 1]
        members = [i for i, c in enumerate(conf) if (lo < c <= hi) or (m == 0 and c == 0.0)]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            avg = sum(conf[i] for i in members) / len(members)
            total += len(members) / len(conf) * abs(acc - avg)
    return total


def test_ece_by_hand():
    # bins (15): 0.91 -> bin 13, 0.92 -> 13, 0.62 -> 9, 0.31 -> 4
    conf = [0.91, 0.92, 0.62, 0.31]
    ok = [True, False, True, False]
    expected = 2 / 4 * abs(0.5 - 0.915) + 1 / 4 * abs(1 - 0.62) + 1 / 4 * abs(0 - 0.31)
    assert ece(conf, ok) == pytest.approx(expected)


def test_ece_matches_reference_on_random_items_including_bin_edges():
    rng = random.Random(0)
    conf = [rng.random() for _ in range(500)] + [1.0, 0.0, 1 / 15, 2 / 15, 0.5]
    ok = [rng.random() < c for c in conf]
    assert ece(conf, ok) == pytest.approx(_reference_ece(conf, ok), abs=1e-12)
    assert ece(conf, ok, bins=10) == pytest.approx(_reference_ece(conf, ok, bins=10), abs=1e-12)


def test_adaptive_ece_equal_mass():
    conf = [0.1, 0.2, 0.8, 0.9]
    ok = [False, True, True, True]
    # two bins of two: |0.5 - 0.15| and |1 - 0.85|
    assert adaptive_ece(conf, ok, bins=2) == pytest.approx(0.5 * 0.35 + 0.5 * 0.15)


def test_calibration_from_loglikelihoods_against_numpy():
    np = pytest.importorskip("numpy")
    rng = random.Random(3)
    logliks = [[rng.uniform(-30, -1) for _ in range(4)] for _ in range(200)]
    labels = [rng.randrange(4) for _ in range(200)]
    probs = [choice_probabilities(s) for s in logliks]
    cal = calibration(probs, labels)
    p = np.exp(np.array(logliks) - np.max(logliks, axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.eye(4)[labels]
    assert cal.brier == pytest.approx(float(np.mean(np.sum((p - onehot) ** 2, axis=1))))
    assert cal.nll == pytest.approx(float(-np.mean(np.log(p[np.arange(200), labels]))))
    assert cal.accuracy == pytest.approx(float(np.mean(np.argmax(p, axis=1) == np.array(labels))))
    assert cal.ece == pytest.approx(_reference_ece(list(p.max(axis=1)), list(np.argmax(p, 1) == labels)))


def test_brier_by_hand_and_length_normalisation():
    cal = calibration([[0.7, 0.2, 0.1]], [0])
    assert cal.brier == pytest.approx(0.09 + 0.04 + 0.01)
    assert cal.nll == pytest.approx(-math.log(0.7))
    assert choice_probabilities([-4.0, -2.0], lengths=[4, 1]) == pytest.approx(softmax([-1.0, -2.0]))
    with pytest.raises(ValueError, match="out of range"):
        calibration([[0.5, 0.5]], [2])
