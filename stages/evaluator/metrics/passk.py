"""pass@k with the unbiased estimator of Chen et al. (2021): for n samples of which c are correct,
pass@k = 1 - C(n - c, k) / C(n, k), averaged over problems. Needs n >= k samples per problem.
"""

from __future__ import annotations

from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass@k needs 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def mean_pass_at_k(outcomes: Sequence[Sequence[bool]], k: int) -> float:
    """Mean pass@k over problems, each given as the list of its samples' verdicts."""
    if not outcomes:
        raise ValueError("pass@k needs at least one problem")
    return sum(pass_at_k(len(o), sum(bool(x) for x in o), k) for o in outcomes) / len(outcomes)
