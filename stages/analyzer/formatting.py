"""Rendering tables for people: Markdown and HTML, where a missing value is an em dash (never 0) and a seed-aggregated
value reads ``mean [ci_low, ci_high] (n=k)`` (a single seed reads as the bare value).

CSV files keep the raw columns (mean, sd, n, ci_low, ci_high separately); the condensed form is for reading.
No dependency beyond pandas (no tabulate, no jinja).
"""

from __future__ import annotations

import html
import math

import pandas as pd

MISSING = "—"
STAT_SUFFIXES = ("_sd", "_n", "_ci_low", "_ci_high")


def is_missing(v: object) -> bool:
    if v is None or v is pd.NA:
        return True
    try:
        return bool(isinstance(v, float) and math.isnan(v))
    except TypeError:
        return False


def fmt(v: object, digits: int = 3) -> str:
    if is_missing(v):
        return MISSING
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v == int(v) and abs(v) >= 1000:
            return str(int(v))
        if v != 0 and (abs(v) < 10 ** -digits or abs(v) >= 1e6):
            return f"{v:.{digits}g}"
        return f"{v:.{digits}f}"
    return str(v)


def condense(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Fold ``col, col_sd, col_n, col_ci_low, col_ci_high`` into one readable ``col`` cell."""
    stats = {c for c in df.columns for s in STAT_SUFFIXES if c.endswith(s) and c[: -len(s)] in df.columns}
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        if col in stats:
            continue
        if f"{col}_ci_low" not in df.columns:
            out[col] = [fmt(v, digits) for v in df[col]]
            continue
        cells = []
        for i in df.index:
            mean, lo, hi = df.at[i, col], df.at[i, f"{col}_ci_low"], df.at[i, f"{col}_ci_high"]
            n = df.at[i, f"{col}_n"] if f"{col}_n" in df.columns else None
            if is_missing(mean):
                cells.append(MISSING)
            elif is_missing(lo):
                cells.append(fmt(mean, digits))  # one seed: no interval
            else:
                tail = f" (n={int(n)})" if not is_missing(n) else ""
                cells.append(f"{fmt(mean, digits)} [{fmt(lo, digits)}, {fmt(hi, digits)}]{tail}")
        out[col] = cells
    return out


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    shown = condense(df, digits)
    if shown.empty and not len(shown.columns):
        return "_no rows_\n"
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(esc(c) for c in shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    for row in shown.itertuples(index=False):
        lines.append("| " + " | ".join(esc(v) for v in row) + " |")
    if shown.empty:
        lines.append("| " + " | ".join(["_no rows_"] + [""] * (len(shown.columns) - 1)) + " |")
    return "\n".join(lines) + "\n"


def to_html(df: pd.DataFrame, digits: int = 3, max_rows: int = 400) -> str:
    shown = condense(df.head(max_rows), digits)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = "".join(
            f'<td class="missing">{MISSING}</td>' if v == MISSING else f"<td>{html.escape(str(v))}</td>" for v in row
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{max(1, len(shown.columns))}" class="missing">no rows yet</td></tr>')
    more = f'<p class="note">{len(df) - max_rows} more rows in the CSV.</p>' if len(df) > max_rows else ""
    return f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}'
