"""Self-BLEU (fast path vs sacrebleu's direct computation), distinct-n, length shift and pass@k on small sets."""

from __future__ import annotations

import json
import math
import random

import pytest

from stages.evaluator.metrics.distinct import distinct_n, tokens
from stages.evaluator.metrics.lengths import ks_statistic, length_shift, length_stats, split_thinking, wasserstein_1
from stages.evaluator.metrics.passk import mean_pass_at_k, pass_at_k
from stages.evaluator.metrics.self_bleu import self_bleu, self_bleu_grouped, self_bleu_reference, self_bleu_scores
from tests.fixtures.build import shared_data


@pytest.fixture(scope="module")
def gsm8k_questions() -> list[str]:
    path = shared_data() / "gsm8k" / "test.jsonl"
    with open(path) as f:
        return [json.loads(line)["question"] for _, line in zip(range(60), f)]


def _mixed_set(questions: list[str]) -> list[str]:
    """Real sentences plus the awkward cases: duplicates, equal lengths, empty and one-word texts, shared n-grams."""
    rng = random.Random(0)
    texts = questions[:25]
    texts += [questions[3], questions[3], "", "Yes", "Yes", "The answer is 42.", "The answer is 41."]
    texts += [" ".join(rng.sample(q.split(), k=min(6, len(q.split())))) for q in questions[25:40]]
    rng.shuffle(texts)
    return texts


def test_self_bleu_fast_equals_sacrebleu_reference(gsm8k_questions):
    texts = _mixed_set(gsm8k_questions)
    assert self_bleu(texts) == pytest.approx(self_bleu_reference(texts), abs=1e-12)


def test_self_bleu_each_score_equals_sacrebleu(gsm8k_questions):
    import sacrebleu

    texts = gsm8k_questions[:12] + [gsm8k_questions[0]]
    fast = self_bleu_scores(texts)
    for i, t in enumerate(texts):
        direct = sacrebleu.sentence_bleu(t, texts[:i] + texts[i + 1:], smooth_method="floor", smooth_value=0.1)
        assert fast[i] == pytest.approx(direct.score / 100, abs=1e-12)
    assert fast[0] == pytest.approx(1.0) and fast[-1] == pytest.approx(1.0)  # a duplicated text matches itself


def test_self_bleu_extremes_and_grouping():
    assert self_bleu(["the cat sat on the mat", "the cat sat on the mat"]) == pytest.approx(1.0)
    assert self_bleu(["alpha beta gamma delta", "one two three four"]) == 0.0
    groups = [["a b c d e", "a b c d e"], ["x y z w v", "p q r s t"], ["only one"]]
    assert self_bleu_grouped(groups) == pytest.approx(0.5)
    assert self_bleu_grouped([["lonely"]]) is None
    with pytest.raises(ValueError, match="at least two"):
        self_bleu(["one"])


def test_distinct_n_by_hand_and_against_direct_count(gsm8k_questions):
    texts = ["a b a b", "a c"]
    assert distinct_n(texts, 1) == pytest.approx(3 / 6)
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    assert distinct_n(texts, 3) == pytest.approx(2 / 2)
    assert distinct_n(["x"], 2) is None
    for n in (1, 2, 3):
        grams = [tuple(tokens(t)[i:i + n]) for t in gsm8k_questions for i in range(len(tokens(t)) - n + 1)]
        assert distinct_n(gsm8k_questions, n) == pytest.approx(len(set(grams)) / len(grams))


def test_length_stats_and_shift_against_scipy():
    stats = length_stats([1, 2, 3, 4, 100], budget=100)
    assert (stats.mean, stats.median, stats.truncation_rate) == (22.0, 3.0, 0.2)
    assert stats.p90 == pytest.approx(61.6)  # numpy-style linear interpolation: 4 + 0.6 * 96
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(1)
    base = [rng.randint(0, 300) for _ in range(57)]
    post = [rng.randint(10, 600) for _ in range(43)]
    w1, ks = length_shift(base, post)
    assert w1 == pytest.approx(scipy_stats.wasserstein_distance([math.log1p(x) for x in base],
                                                                [math.log1p(x) for x in post]))
    assert ks == pytest.approx(scipy_stats.ks_2samp(base, post).statistic)
    assert wasserstein_1([0.0], [1.0]) == 1.0 and ks_statistic([1, 2], [1, 2]) == 0.0


def test_split_thinking():
    assert split_thinking("<think>\nstep\n</think>\n\nAnswer 3") == ("step", "Answer 3")
    assert split_thinking("Answer 3") == ("", "Answer 3")


def test_pass_at_k_against_the_combinatorial_formula():
    for n, c, k in [(10, 3, 1), (10, 3, 5), (8, 0, 2), (8, 8, 8), (5, 4, 2)]:
        expected = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(expected)
    assert mean_pass_at_k([[True, False], [False, False]], 1) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="at least 3 samples"):
        pass_at_k(2, 1, 3)
