"""The evaluator's params that name local files (judge models, the HarmBench classifier, AutoDAN's mutate model and
prototype file), with ``$VARS`` and ``~`` expanded where the stage runs.

Why not at validation: a study plans ``$SCRATCH/...`` once, on a machine where ``$SCRATCH`` may be another cluster's
or unset, and the spec hash must not depend on where the manifest was read. Inputs are expanded the same way (when
they are resolved). The preflight and the run both read the params through here, so an unset variable is bad input
(exit 2, naming the parameter) before anything is written.
"""

from __future__ import annotations

from stages.core.errors import InputError
from stages.core.storage import StorageError, expand_vars
from stages.evaluator.params import EvaluatorParams

WHERE = "$.spec.params"


def _expanded(value: str | None, where: str) -> str | None:
    if value is None:
        return None
    try:
        return expand_vars(value)
    except StorageError as e:
        raise InputError(str(e), where) from None


def with_local_paths(p: EvaluatorParams) -> EvaluatorParams:
    """A copy of ``p`` whose file and folder params are expanded (a served judge's name stays as written)."""
    autodan = p.attacks.autodan
    autodan = autodan.model_copy(update={
        "mutate_model": _expanded(autodan.mutate_model, f"{WHERE}.attacks.autodan.mutate_model"),
        "prototypes": _expanded(autodan.prototypes, f"{WHERE}.attacks.autodan.prototypes"),
    })
    return p.model_copy(update={
        "judge_model": _expanded(p.judge_model, f"{WHERE}.judge_model"),
        "harmbench_classifier": _expanded(p.harmbench_classifier, f"{WHERE}.harmbench_classifier"),
        "attacks": p.attacks.model_copy(update={"autodan": autodan}),
    })
