"""Which rows train and which validate: the length policy, then a seeded train/validation split.

Why deterministic and written down: a requeued job must train on exactly the rows the first attempt chose (verl
restores its loader position by index), and a person must be able to see what was held out and what was dropped.
The split is a permutation drawn from the run's seed; the length policy follows ``params.truncation``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from stages.core.errors import InputError
from stages.sft_trainer.data import Lengths

MAX_LENGTH = "$.spec.params.max_length"


@dataclass(frozen=True)
class Selection:
    train: list[int]
    val: list[int]
    dropped: int  # rows over max_length left out (truncation=drop)
    truncated: int  # rows over max_length cut at the end (truncation=right)


def apply_length_policy(lengths: Lengths, max_length: int, truncation: str) -> tuple[list[int], int, int]:
    """Indices of usable rows, and how many were dropped or will be truncated; ``InputError`` if none is usable."""
    over = [i for i, n in enumerate(lengths.total) if n > max_length]
    if len(over) == len(lengths.total):
        raise InputError(
            f"max_length {max_length} is shorter than every example (the shortest is {min(lengths.total)} tokens): "
            "raise max_length",
            MAX_LENGTH,
        )
    if truncation == "error" and over:
        longest = max(lengths.total)
        raise InputError(
            f"{len(over)} of {len(lengths.total)} rows are longer than max_length {max_length} (the longest is "
            f"{longest} tokens, e.g. row {over[0]}): raise max_length, or set truncation to `drop` or `right`",
            MAX_LENGTH,
        )
    if truncation == "drop":
        keep = [i for i, n in enumerate(lengths.total) if n <= max_length]
        return keep, len(over), 0
    # right: a row whose prompt alone fills max_length would keep no trained token; leave those out
    keep = [i for i in range(len(lengths.total)) if lengths.prompt[i] < max_length]
    if not keep:
        raise InputError(f"every prompt is at least max_length {max_length} tokens long: nothing would be trained",
                         MAX_LENGTH)
    return keep, len(lengths.total) - len(keep), sum(1 for i in keep if lengths.total[i] > max_length)


def split(indices: list[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded split into (train, val); val holds round(n * fraction) rows, at least one when asked for."""
    if val_fraction <= 0:
        return list(indices), []
    order = list(indices)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * val_fraction))
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return train, val


def select(lengths: Lengths, max_length: int, truncation: str, val_fraction: float, seed: int) -> Selection:
    usable, dropped, truncated = apply_length_policy(lengths, max_length, truncation)
    train, val = split(usable, val_fraction, seed)
    return Selection(train=train, val=val, dropped=dropped, truncated=truncated)
