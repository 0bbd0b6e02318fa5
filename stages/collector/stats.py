"""Collection statistics: accuracy, unbiased pass@k, reward histogram, lengths, verdict counts, throughput."""

from __future__ import annotations

from collections import Counter, defaultdict
from math import comb
from statistics import mean, median
from typing import Any


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021): 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def _dist(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    s = sorted(values)
    return {"mean": mean(s), "median": median(s), "p90": s[min(len(s) - 1, int(0.9 * len(s)))], "max": s[-1]}


def compute_stats(records: list[dict], mode: str, n_samples: int) -> dict[str, Any]:
    graded = [r for r in records if r.get("correct") is not None]
    items: dict[int, list[dict]] = defaultdict(list)
    for r in graded:
        items[r["position"]].append(r)
    ks = sorted({k for k in (1, 2, 4, 8, 16, 32, 64, n_samples) if k <= n_samples})
    pass_k = {
        str(k): mean(pass_at_k(len(rs), sum(bool(x["correct"]) for x in rs), k) for rs in items.values())
        for k in ks
    } if items else {}
    return {
        "mode": mode,
        "records": len(records),
        "items": len({r["position"] for r in records}),
        "graded": len(graded),
        "accuracy": mean(bool(r["correct"]) for r in graded) if graded else None,
        "pass_at_k": pass_k,
        "reward_histogram": dict(sorted(Counter(str(r["reward"]) for r in graded).items())),
        "verdicts": dict(sorted(Counter(str(r.get("verdict")) for r in records if r.get("verdict")).items())),
        "finish_reasons": dict(sorted(Counter(str(r.get("finish_reason")) for r in records
                                              if r.get("finish_reason")).items())),
        "target_kinds": dict(sorted(Counter(str(r["target_kind"]) for r in records if "target_kind" in r).items())),
        "response_tokens": _dist([r["response_tokens"] for r in records if r.get("response_tokens") is not None]),
        "prompt_tokens": _dist([r["prompt_tokens"] for r in records if r.get("prompt_tokens") is not None]),
        "response_chars": _dist([len(r["response"]) for r in records if r.get("response")]),
    }
