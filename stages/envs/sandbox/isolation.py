"""What a sandbox's layers add up to: one name for the manifest, and whether model-written code is contained.

Contained means every way out is closed by at least one layer:
- files (the user's home, the study's scratch, the installation): the namespaces' read-only view, or Landlock;
- network: a network namespace without interfaces, or seccomp (no sockets);
- other processes (signals, ptrace, ``/proc/<pid>/environ``): PID and user namespaces, or Landlock (``/proc``
  unreachable, signals scoped) with seccomp (no ptrace, no new session, no signal where Landlock cannot scope them).
Time, memory, processes, file sizes and the environment are bounded by every mode (rlimits, process group or PID
namespace, an environment built from nothing), so they are no layer of their own here.

Where a node contains nothing, model-written code runs only when someone said so: the manifest's
``allow_unisolated_code``, which the stage passes on to every process it starts (Ray workers included) as
``FLLM_ALLOW_UNISOLATED_CODE=1``. Standard library only.
"""

from __future__ import annotations

import os

ALLOW_ENV = "FLLM_ALLOW_UNISOLATED_CODE"
LAYERS = ("namespaces", "landlock", "seccomp")


def active(report: dict) -> dict[str, bool]:
    """Which layers a zygote's report says are on."""
    layers = report.get("layers") or {}
    return {"namespaces": report.get("mode") == "namespaces", "landlock": bool(layers.get("landlock")),
            "seccomp": bool(layers.get("seccomp"))}


def name(report: dict) -> str:
    """"namespaces+landlock+seccomp", "landlock+seccomp", ... or "none" (rlimits and a clean environment only)."""
    on = [layer for layer, yes in active(report).items() if yes]
    return "+".join(on) if on else "none"


def gaps(report: dict) -> list[str]:
    """The ways out that no active layer closes (empty: contained)."""
    on = active(report)
    ns, ll, sc = on["namespaces"], on["landlock"], on["seccomp"]
    out = []
    if not (ns or ll):
        out.append("files (no namespaces, no Landlock)")
    if not (ns or sc):
        out.append("network (no namespaces, no seccomp)")
    if not (ns or (ll and sc)):
        out.append("other processes (no namespaces, and not both Landlock and seccomp)")
    return out


def allowed_by_environment() -> bool:
    return os.environ.get(ALLOW_ENV) == "1"
