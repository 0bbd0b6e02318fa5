"""Sample-level forgetting on constructed result pairs whose answers were worked out by hand."""

from __future__ import annotations

import math

import pytest

from stages.evaluator.metrics.transitions import ItemSubsetMismatch, chance_adjusted, mcnemar, pooled, transitions

PRE = {"a": 1, "b": 1, "c": 0, "d": 0, "e": True, "f": None, "g": 1}
POST = {"a": 1, "b": 0, "c": 1, "d": False, "e": 0, "f": 1, "g": None}


def test_counts_and_rates_by_hand():
    t = transitions(PRE, POST)
    # f and g lack a verdict on one side: dropped pairwise. a 1->1, b 1->0, c 0->1, d 0->0, e 1->0.
    assert (t.n, t.n_missing) == (5, 2)
    assert (t.retained, t.forgotten, t.gained, t.never) == (1, 2, 1, 1)
    assert t.forgetting == pytest.approx(2 / 5)
    assert t.backward_transfer == pytest.approx(1 / 5)
    assert t.retention == pytest.approx(1 / 5) and t.non_acquisition == pytest.approx(1 / 5)
    assert t.forgetting_conditional == pytest.approx(2 / 3)
    assert t.acc_pre == pytest.approx(3 / 5) and t.acc_post == pytest.approx(2 / 5)
    assert t.as_dict()["forgetting"] == pytest.approx(0.4)


def test_no_correct_base_item_has_no_conditional_forgetting():
    t = transitions({"x": 0, "y": 0}, {"x": 1, "y": 0})
    assert t.forgetting_conditional is None and t.backward_transfer == 0.5


def test_different_item_subsets_are_an_error_naming_the_items():
    with pytest.raises(ItemSubsetMismatch, match=r"task 'arc'.*1 only in the base \(e\.g\. z\)"):
        transitions({"x": 1, "z": 0}, {"x": 1}, task="arc")
    t = transitions({"x": 1, "z": 0}, {"x": 0, "w": 1}, intersect=True)
    assert (t.n, t.forgotten) == (1, 1)
    assert issubclass(ItemSubsetMismatch, ValueError)


def test_non_binary_correctness_is_refused():
    with pytest.raises(ValueError, match="must be 0/1"):
        transitions({"x": 0.5}, {"x": 1})


@pytest.mark.parametrize(
    ("b", "c", "chi2"),
    [(10, 2, 49 / 12), (3, 3, 1 / 6), (2, 1, 0.0), (0, 7, 36 / 7), (0, 0, 0.0)],
)
def test_mcnemar_matches_the_formula_and_chi2_survival(b, c, chi2):
    stat, p = mcnemar(b, c)
    assert stat == pytest.approx(chi2)
    if b + c == 0:
        assert p == 1.0
    else:
        scipy_stats = pytest.importorskip("scipy.stats")
        assert p == pytest.approx(float(scipy_stats.chi2.sf(chi2, 1)), rel=1e-9)


def test_mcnemar_from_transitions_counts():
    t = transitions(PRE, POST)
    assert mcnemar(t.forgotten, t.gained) == (0.0, 1.0)  # b=2, c=1: (|1| - 1)^2 / 3 = 0


def test_chance_adjustment_by_hand():
    # 4 items: pre 1,1,0,0 (acc 0.5); post 1,0,0,0 (acc 0.25); F = 1/4.
    t = transitions({"1": 1, "2": 1, "3": 0, "4": 0}, {"1": 1, "2": 0, "3": 0, "4": 0})
    c = chance_adjusted(t, 4)
    assert c.forgetting_chance == pytest.approx(0.5 / 3 * 0.75)  # 0.125
    assert c.backward_transfer_chance == pytest.approx(0.5 * 0.75 / 3)
    assert c.forgetting_true == pytest.approx(0.25 - 0.125)
    assert c.backward_transfer_true == 0.0  # BT = 0 < chance: clipped at 0
    assert c.forgetting_max == pytest.approx((4 * 0.5 - 1) / 3)
    assert c.backward_transfer_max == 0.0  # k * 0.25 - 1 = 0
    # the same k for every item given as a list gives the same numbers
    assert chance_adjusted(t, [4, 4, 4, 4]) == c
    with pytest.raises(ValueError, match="k >= 2"):
        chance_adjusted(t, 1)


def test_pooled_adds_counts():
    t1 = transitions({"a": 1, "b": 0}, {"a": 0, "b": 0})
    t2 = transitions({"a": 1}, {"a": 1})
    p = pooled([t1, t2])
    assert (p.n, p.forgotten, p.retained, p.never) == (3, 1, 1, 1)
    assert p.forgetting == pytest.approx(1 / 3)
    assert math.isclose(p.forgetting + p.backward_transfer + p.retention + p.non_acquisition, 1.0)
