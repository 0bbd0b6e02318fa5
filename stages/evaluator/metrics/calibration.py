"""Calibration of multiple-choice answers from per-choice log-likelihoods (methods reference §9).

s_ic = log-likelihood of choice c (optionally divided by the choice's length), p_ic = softmax_c(s_ic),
conf_i = max_c p_ic, correct_i = 1[argmax_c p_ic = y_i] (the first maximum on ties, as lm-eval's ``acc``).
ECE = sum_m (|B_m|/N) |acc(B_m) - conf(B_m)| over 15 equal-width bins on [0, 1], bin m = ((m-1)/M, m/M] (a
confidence of exactly 0 falls in the first bin); adaptive ECE uses equal-mass bins over the sorted confidences;
Brier = (1/N) sum_i sum_c (p_ic - 1[c = y_i])^2; NLL = -(1/N) sum_i log p_{i, y_i}.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def choice_probabilities(logliks: Sequence[float], lengths: Sequence[int] | None = None) -> list[float]:
    if not logliks:
        raise ValueError("a multiple-choice item needs at least one choice")
    if lengths is not None:
        if len(lengths) != len(logliks) or any(n <= 0 for n in lengths):
            raise ValueError("length normalisation needs one positive length per choice")
        logliks = [s / n for s, n in zip(logliks, lengths)]
    return softmax(logliks)


def _argmax(values: Sequence[float]) -> int:
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def ece(confidences: Sequence[float], correct: Sequence[bool], bins: int = 15) -> float:
    if len(confidences) != len(correct) or not confidences:
        raise ValueError("ECE needs one correctness value per confidence, and at least one item")
    sums = [[0, 0.0, 0.0] for _ in range(bins)]  # count, sum of correct, sum of confidence
    for conf, ok in zip(confidences, correct):
        m = min(max(math.ceil(conf * bins) - 1, 0), bins - 1)
        sums[m][0] += 1
        sums[m][1] += float(ok)
        sums[m][2] += conf
    n = len(confidences)
    return sum(c / n * abs(a / c - f / c) for c, a, f in sums if c)


def adaptive_ece(confidences: Sequence[float], correct: Sequence[bool], bins: int = 15) -> float:
    """ECE over equal-mass bins: the sorted items split into ``bins`` nearly equal consecutive groups."""
    if len(confidences) != len(correct) or not confidences:
        raise ValueError("ECE needs one correctness value per confidence, and at least one item")
    order = sorted(range(len(confidences)), key=lambda i: confidences[i])
    n, k = len(order), min(bins, len(order))
    total = 0.0
    for b in range(k):
        chunk = order[b * n // k : (b + 1) * n // k]
        acc = sum(float(correct[i]) for i in chunk) / len(chunk)
        conf = sum(confidences[i] for i in chunk) / len(chunk)
        total += len(chunk) / n * abs(acc - conf)
    return total


@dataclass(frozen=True)
class Calibration:
    n: int
    accuracy: float
    ece: float
    adaptive_ece: float
    brier: float
    nll: float


def calibration(probabilities: Sequence[Sequence[float]], labels: Sequence[int], bins: int = 15) -> Calibration:
    """All calibration numbers from per-item choice probabilities and gold indices."""
    if len(probabilities) != len(labels) or not labels:
        raise ValueError("calibration needs one gold label per item, and at least one item")
    confs, oks, brier, nll = [], [], 0.0, 0.0
    for probs, y in zip(probabilities, labels):
        if not 0 <= y < len(probs):
            raise ValueError(f"gold label {y} is out of range for {len(probs)} choices")
        confs.append(max(probs))
        oks.append(_argmax(probs) == y)
        brier += sum((p - (1.0 if c == y else 0.0)) ** 2 for c, p in enumerate(probs))
        nll -= math.log(max(probs[y], 1e-300))
    n = len(labels)
    return Calibration(
        n=n,
        accuracy=sum(oks) / n,
        ece=ece(confs, oks, bins),
        adaptive_ece=adaptive_ece(confs, oks, bins),
        brier=brier / n,
        nll=nll / n,
    )
