"""Response-length statistics and their shift against the base (methods reference §9).

Per benchmark, the token lengths of the answer part and of the thinking part (text before ``</think>``) are summarised
by mean, median, P90 and truncation rate (responses that used the whole generation budget). The shift against the
base is the 1-Wasserstein distance between the log-length distributions (log(1 + tokens), so empty answers count)
and the two-sample Kolmogorov-Smirnov statistic. Both are computed directly from the empirical CDFs: no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

THINK_END = "</think>"


def split_thinking(text: str) -> tuple[str, str]:
    """(thinking, answer): the text before the last ``</think>`` and after it; no marker means no thinking part."""
    cut = text.rfind(THINK_END)
    if cut < 0:
        return "", text
    thinking = text[:cut].replace("<think>", "", 1)
    return thinking.strip(), text[cut + len(THINK_END) :].lstrip()


@dataclass(frozen=True)
class LengthStats:
    n: int
    mean: float
    median: float
    p90: float
    truncation_rate: float | None


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), on already sorted values."""
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def length_stats(lengths: Sequence[int], budget: int | None = None) -> LengthStats:
    if not lengths:
        raise ValueError("length statistics need at least one response")
    values = sorted(float(x) for x in lengths)
    truncated = None if budget is None else sum(x >= budget for x in lengths) / len(lengths)
    return LengthStats(
        n=len(values),
        mean=sum(values) / len(values),
        median=_quantile(values, 0.5),
        p90=_quantile(values, 0.9),
        truncation_rate=truncated,
    )


def _ecdf_steps(a: Sequence[float], b: Sequence[float]) -> list[tuple[float, float, float]]:
    """(point, F_a(point), F_b(point)) at every distinct value of a and b, in increasing order."""
    sa, sb = sorted(a), sorted(b)
    points = sorted(set(sa) | set(sb))
    out, ia, ib = [], 0, 0
    for x in points:
        while ia < len(sa) and sa[ia] <= x:
            ia += 1
        while ib < len(sb) and sb[ib] <= x:
            ib += 1
        out.append((x, ia / len(sa), ib / len(sb)))
    return out


def wasserstein_1(a: Sequence[float], b: Sequence[float]) -> float:
    """W1 between two empirical distributions: the integral of |F_a - F_b|."""
    if not a or not b:
        raise ValueError("W1 needs two non-empty samples")
    steps = _ecdf_steps(a, b)
    return sum(abs(fa - fb) * (steps[i + 1][0] - x) for i, (x, fa, fb) in enumerate(steps[:-1]))


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: max |F_a - F_b|."""
    if not a or not b:
        raise ValueError("KS needs two non-empty samples")
    return max(abs(fa - fb) for _, fa, fb in _ecdf_steps(a, b))


def log_lengths(lengths: Sequence[int]) -> list[float]:
    return [math.log1p(x) for x in lengths]


def length_shift(base: Sequence[int], post: Sequence[int]) -> tuple[float, float]:
    """(W1 on log(1 + length), KS statistic on length) of the post-trained responses against the base's."""
    return wasserstein_1(log_lengths(base), log_lengths(post)), ks_statistic(list(base), list(post))
