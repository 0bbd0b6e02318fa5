"""The order things are shown in: the plan's method order, its domains, starting points and sizes by parameter
count, then anything a study adds, alphabetically. One module so that every table and figure agrees.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import pandas as pd

from stages.core.results import CAPABILITIES

METHODS = ["BASE", "GT-SFT", "SF-SFT", "CF-SFT", "SELF", "ON-RL", "PI"]
DOMAINS = ["math", "code", "qa"]
STARTS = ["BASE", "SAFE"]


def size_in_billions(size: object) -> float:
    """'1.7B' -> 1.7, '500M' -> 0.5, 'tiny' -> 0 (before every real size), missing -> inf."""
    if size is None or (isinstance(size, float) and math.isnan(size)):
        return math.inf
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([bBmM]?)\s*", str(size))
    if not m:
        return 0.0
    value = float(m.group(1))
    return value / 1000.0 if m.group(2).lower() == "m" else value


def rank(value: object, known: list[str]) -> tuple[int, str]:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return (len(known) + 1, "")
    s = str(value)
    return (known.index(s), s) if s in known else (len(known), s)


def ordered(values: Iterable[object], known: list[str]) -> list:
    uniq = list(dict.fromkeys(v for v in values if not (v is None or (isinstance(v, float) and math.isnan(v)))))
    return sorted(uniq, key=lambda v: rank(v, known))


def ordered_sizes(values: Iterable[object]) -> list:
    uniq = list(dict.fromkeys(v for v in values if not (v is None or (isinstance(v, float) and math.isnan(v)))))
    return sorted(uniq, key=lambda v: (size_in_billions(v), str(v)))


def ordered_capabilities(values: Iterable[object]) -> list:
    return ordered(values, list(CAPABILITIES))


def _plain_key(v: object) -> tuple[int, float, str]:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return (1, math.inf, "")
    if isinstance(v, (int, float)):
        return (0, float(v), "")
    return (0, math.inf, str(v))


def sort_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Sort rows by start, size, method, domain (the plan's orders), lr, engine, capability, seed, task, run id."""
    if df.empty:
        return df
    keys = (
        ("start", lambda v: rank(v, STARTS)),
        ("model_size", lambda v: (size_in_billions(v), str(v))),
        ("method", lambda v: rank(v, METHODS)),
        ("domain", lambda v: rank(v, DOMAINS)),
        ("lr", _plain_key),
        ("engine", _plain_key),
        ("capability", lambda v: rank(v, list(CAPABILITIES))),
        ("seed", _plain_key),
        ("task", _plain_key),
        ("run_id", _plain_key),
    )
    tmp = df.copy()
    sort_cols = []
    for i, (col, fn) in enumerate(keys):
        if col in tmp.columns:
            tmp[f"__k{i}"] = [fn(v) for v in tmp[col]]
            sort_cols.append(f"__k{i}")
    return tmp.sort_values(sort_cols, kind="stable").drop(columns=sort_cols).reset_index(drop=True)
