"""The stages' side of the isolation rule: check the node before any code is graded, refuse or record.

Every stage that grades model-written code (collector, grpo-trainer, spin, pi-distill, evaluator) calls ``refusal``
in its preflight: the sandbox doctor runs once per process and prints its lines, and a node where the sandbox cannot
contain a program stops the run before anything is written, unless the manifest opts in with
``allow_unisolated_code``; the opt-in is then passed on to every process the stage starts (verl's Ray workers
included) as ``FLLM_ALLOW_UNISOLATED_CODE=1``, which is what the sandbox itself checks. The run then records what
it graded under with ``summary()`` in the manifest's summary.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from stages.envs.sandbox import isolation

UNISOLATED_CODE_HELP = (
    "Run model-written code even where the sandbox cannot contain it on the node (no user namespaces and no "
    "Landlock + seccomp: see `python -m stages.envs.sandbox.doctor`). Off: such a run refuses to start. Recorded "
    "in the summary; never on a shared cluster."
)
WHERE = "$.spec.params.allow_unisolated_code"
_RECORD: dict | None = None
_ALLOWED = False


def node_record() -> dict:
    """The doctor's record for this node (checked once per process; its lines go to stderr)."""
    global _RECORD
    if _RECORD is None:
        from stages.envs.sandbox.doctor import diagnose, lines

        _RECORD = diagnose()
        print("\n".join(lines(_RECORD)), file=sys.stderr)
    return _RECORD


def refusal(allow_unisolated: bool) -> str | None:
    """Why a run that grades code must not start here (None: it may); with the opt-in, let the sandbox run."""
    global _ALLOWED
    record = node_record()
    if record["contained"]:
        return None
    if allow_unisolated:
        _ALLOWED = True
        os.environ[isolation.ALLOW_ENV] = "1"
        return None
    return (f"model-written code cannot be contained on this node (isolation {record['isolation']}; open: "
            f"{'; '.join(record['gaps'])}): run where `python -m stages.envs.sandbox.doctor` says contained, or set "
            "allow_unisolated_code: true to run it anyway (never on a shared cluster)")


def in_process(what: str) -> None:
    """Record that model-written code runs outside the sandbox, opted in (the evaluator's allow_unsafe_code)."""
    global _RECORD, _ALLOWED
    _RECORD, _ALLOWED = {"isolation": f"none ({what})", "contained": False}, True
    os.environ[isolation.ALLOW_ENV] = "1"


def summary() -> dict:
    """What the manifest's summary records about code isolation ({} when this run graded no code)."""
    if _RECORD is None:
        return {}
    out = {"isolation": _RECORD["isolation"], "isolation_contained": _RECORD["contained"]}
    if _ALLOWED:
        out["unisolated_code_allowed"] = True
    return out


def grades_code(domains_or_env_ids: Iterable[str]) -> bool:
    """Whether any of these env ids (or bare domains, as in an RL parquet's data_source) is graded by running code."""
    from stages.envs.registry import ENVS

    return any(s == "code" or (s in ENVS and ENVS[s].domain == "code") for s in domains_or_env_ids)
