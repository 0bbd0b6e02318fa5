"""A real sandbox for model-written Python programs (see client.py for the API, zygote.py for how).

Each run gets: its own process (forked from a clean, warm zygote), PID namespace (everything it spawns
dies with it), session, empty private tmpfs as working directory, a read-only view of the filesystem
with the home directory hidden, no network (a network namespace without interfaces), no inherited
environment (no WANDB_API_KEY, HF_TOKEN, ...), an unprivileged uid when the grader is root, and limits on
CPU time, wall time, memory, processes, file size, open files and output size. Beneath the namespaces, and
alone where the OS refuses them, a second layer needing no privileges (confine.py): Landlock (only the system
folders, read-only, and the run's own directory), seccomp (no sockets, ptrace, mounts, namespaces, keyrings ...)
and, without namespaces, a session and process group the run cannot leave. isolation.py says what the active
layers contain; where they leave a way out programs do not run unless opted in (FLLM_ALLOW_UNISOLATED_CODE, set
by the stages from their manifest's allow_unisolated_code: gate.py). `python -m stages.envs.sandbox.doctor`
prints which layers hold on a node.
"""

from stages.envs.sandbox.client import Sandbox, SandboxError
from stages.envs.sandbox.limits import CLEAN_ENV, RunResult, SandboxLimits

__all__ = ["CLEAN_ENV", "RunResult", "Sandbox", "SandboxError", "SandboxLimits"]
