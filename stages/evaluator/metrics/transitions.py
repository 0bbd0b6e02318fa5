"""Sample-level forgetting: how per-item correctness moved between a base and a post-trained evaluation.

Why per item: two checkpoints with the same accuracy can have forgotten and learned very different items, and
forgetting hides inside a flat average (methods reference §9). Definitions, for N items with correctness
a_pre, a_post in {0, 1}:

- F = #(1->0)/N, BT = #(0->1)/N, retention = #(1->1)/N, non-acquisition = #(0->0)/N;
- F_cond = #(1->0) / #(pre=1) (None when the base got nothing right);
- chance-adjusted F and BT for k-option multiple choice (Harmon et al.), with their ceilings;
- McNemar's chi^2 = (|b - c| - 1)^2 / (b + c), b = #(1->0), c = #(0->1), p from chi^2 with one degree of freedom.

The two sides must cover the same items: a comparison over different subsets is meaningless, so it is an error
(``ItemSubsetMismatch``) unless the caller asks for the intersection. Items scored on both sides but missing a
verdict on either (``None``: e.g. a grader that could not run) are dropped pairwise and counted in ``n_missing``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

Correctness = bool | int | float | None


class ItemSubsetMismatch(ValueError):
    """Two result sets that do not cover the same items were passed for comparison."""


@dataclass(frozen=True)
class Transitions:
    n: int
    n_missing: int
    retained: int  # 1 -> 1
    forgotten: int  # 1 -> 0
    gained: int  # 0 -> 1
    never: int  # 0 -> 0

    def _rate(self, count: int) -> float:
        return count / self.n if self.n else 0.0

    @property
    def forgetting(self) -> float:
        return self._rate(self.forgotten)

    @property
    def backward_transfer(self) -> float:
        return self._rate(self.gained)

    @property
    def retention(self) -> float:
        return self._rate(self.retained)

    @property
    def non_acquisition(self) -> float:
        return self._rate(self.never)

    @property
    def forgetting_conditional(self) -> float | None:
        pre_correct = self.retained + self.forgotten
        return self.forgotten / pre_correct if pre_correct else None

    @property
    def acc_pre(self) -> float:
        return self._rate(self.retained + self.forgotten)

    @property
    def acc_post(self) -> float:
        return self._rate(self.retained + self.gained)

    def as_dict(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = asdict(self)
        for name in ("forgetting", "backward_transfer", "retention", "non_acquisition", "forgetting_conditional",
                     "acc_pre", "acc_post"):
            out[name] = getattr(self, name)
        return out


def _as_bit(value: Correctness, item: str, side: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    raise ValueError(f"{side} correctness of item {item!r} must be 0/1, True/False or None, got {value!r}")


def _describe_difference(pre: Mapping[str, Correctness], post: Mapping[str, Correctness]) -> str:
    only_pre = sorted(set(pre) - set(post))
    only_post = sorted(set(post) - set(pre))
    parts = []
    if only_pre:
        parts.append(f"{len(only_pre)} only in the base (e.g. {', '.join(map(str, only_pre[:3]))})")
    if only_post:
        parts.append(f"{len(only_post)} only in the post-trained results (e.g. {', '.join(map(str, only_post[:3]))})")
    return "; ".join(parts)


def transitions(
    pre: Mapping[str, Correctness], post: Mapping[str, Correctness], *, task: str = "", intersect: bool = False
) -> Transitions:
    """Count the four transitions over the items both sides scored. Different item sets raise unless ``intersect``."""
    if set(pre) != set(post) and not intersect:
        where = f" for task {task!r}" if task else ""
        raise ItemSubsetMismatch(
            f"the base and post-trained results cover different items{where}: {_describe_difference(pre, post)}; "
            "evaluate both on the same pinned item subset (same tasks, limit/samples and seed)"
        )
    counts = {(1, 1): 0, (1, 0): 0, (0, 1): 0, (0, 0): 0}
    missing = 0
    for item in sorted(set(pre) & set(post)):
        a = _as_bit(pre[item], item, "base")
        b = _as_bit(post[item], item, "post-trained")
        if a is None or b is None:
            missing += 1
            continue
        counts[(a, b)] += 1
    return Transitions(
        n=sum(counts.values()),
        n_missing=missing,
        retained=counts[(1, 1)],
        forgotten=counts[(1, 0)],
        gained=counts[(0, 1)],
        never=counts[(0, 0)],
    )


@dataclass(frozen=True)
class ChanceAdjusted:
    forgetting_chance: float
    backward_transfer_chance: float
    forgetting_true: float
    backward_transfer_true: float
    forgetting_max: float
    backward_transfer_max: float


def chance_adjusted(t: Transitions, k: float | Sequence[int]) -> ChanceAdjusted:
    """Harmon et al.'s correction for k-option multiple choice (methods reference §9).

    ``k`` is the number of options, or one number per item when it varies (the chance terms are then averaged over
    items, which reduces to the reference formula when every item has the same k).
    """
    ks = [float(k)] if isinstance(k, (int, float)) else [float(x) for x in k]
    if not ks or any(x < 2 for x in ks):
        raise ValueError(f"chance adjustment needs k >= 2 options per item, got {k!r}")
    a_pre, a_post = t.acc_pre, t.acc_post
    f_chance = sum((1 - a_pre) / (x - 1) * (1 - a_post) for x in ks) / len(ks)
    bt_chance = sum((1 - a_pre) * (1 - a_post) / (x - 1) for x in ks) / len(ks)
    f_max = sum(max((x * a_pre - 1) / (x - 1), 0.0) for x in ks) / len(ks)
    bt_max = sum(max((x * a_post - 1) / (x - 1), 0.0) for x in ks) / len(ks)
    return ChanceAdjusted(
        forgetting_chance=f_chance,
        backward_transfer_chance=bt_chance,
        forgetting_true=max(t.forgetting - f_chance, 0.0),
        backward_transfer_true=max(t.backward_transfer - bt_chance, 0.0),
        forgetting_max=f_max,
        backward_transfer_max=bt_max,
    )


def mcnemar(b: int, c: int) -> tuple[float, float]:
    """McNemar's chi^2 with the continuity correction, (|b - c| - 1)^2 / (b + c), and its p-value (1 d.o.f.).

    With no discordant pairs (b + c = 0) there is no evidence of change: chi^2 = 0, p = 1.
    """
    if b < 0 or c < 0:
        raise ValueError(f"McNemar counts must be non-negative, got b={b}, c={c}")
    if b + c == 0:
        return 0.0, 1.0
    chi2 = (abs(b - c) - 1) ** 2 / (b + c)
    return chi2, math.erfc(math.sqrt(chi2 / 2.0))  # survival function of chi^2 with 1 d.o.f.


def pooled(per_task: Sequence[Transitions]) -> Transitions:
    """All tasks' items together (the 'overall' row): counts add up, rates are over the pooled N."""
    return Transitions(
        n=sum(t.n for t in per_task),
        n_missing=sum(t.n_missing for t in per_task),
        retained=sum(t.retained for t in per_task),
        forgotten=sum(t.forgotten for t in per_task),
        gained=sum(t.gained for t in per_task),
        never=sum(t.never for t in per_task),
    )
