"""Which KL(base || post) on target prompts the analysis uses, per result: the exact one when the results have it.

The evaluator reports two figures on the same base samples: ``kl_target_exact`` (at every position the KL summed
over the vocabulary; never negative) and ``kl_target`` (Monte Carlo: summed log-ratios of the sampled tokens; can
be negative). Results written before the exact figure existed have only the Monte Carlo one; the analysis then
uses it, marks it (``kl_estimator`` = ``monte-carlo``), draws those points hollow and says so in the report's
warnings, so that no reader mistakes one for the other. Both figures and their standard errors stay in the tables.
"""

from __future__ import annotations

import math

import pandas as pd

from stages.core.results import EvalResults

EXACT = "exact"
MONTE_CARLO = "monte-carlo"
COLUMNS = ["kl_target", "kl_target_stderr", "kl_estimator", "kl_target_mc", "kl_target_mc_stderr"]


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def kl_columns(res: EvalResults) -> dict[str, float | str | None]:
    """The KL columns of one result: ``kl_target`` is the figure the analysis uses, ``kl_estimator`` which it is."""
    mc = {"kl_target_mc": _nan(res.kl_target), "kl_target_mc_stderr": _nan(res.kl_target_stderr)}
    if res.kl_target_exact is not None:
        return {"kl_target": float(res.kl_target_exact), "kl_target_stderr": _nan(res.kl_target_exact_stderr),
                "kl_estimator": EXACT, **mc}
    if res.kl_target is not None:
        return {"kl_target": float(res.kl_target), "kl_target_stderr": _nan(res.kl_target_stderr),
                "kl_estimator": MONTE_CARLO, **mc}
    return {"kl_target": math.nan, "kl_target_stderr": math.nan, "kl_estimator": None, **mc}


def monte_carlo_warning(ckpts: pd.DataFrame) -> list[str]:
    """The report's note when any trained checkpoint's KL is the Monte Carlo fallback."""
    trained = ckpts[~ckpts["is_base"]]
    fallback = trained[trained["kl_estimator"].eq(MONTE_CARLO)]
    if fallback.empty:
        return []
    return [f"KL(base || post): {len(fallback)} of {int(trained['kl_estimator'].notna().sum())} trained checkpoints "
            "have only the Monte Carlo KL (results written before the exact per-token KL): the analysis uses it "
            "for them (kl_estimator = monte-carlo in the tables, hollow markers in the KL figure); it is noisier "
            "and can be negative."]
