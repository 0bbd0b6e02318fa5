"""A real sandbox for model-written Python programs (see client.py for the API, zygote.py for how).

Each run gets: its own process (forked from a clean, warm zygote), PID namespace (everything it spawns
dies with it), session, empty private tmpfs as working directory, a read-only view of the filesystem
with the home directory hidden, no network (a network namespace without interfaces), no inherited
environment (no WANDB_API_KEY, HF_TOKEN, ...), an unprivileged uid when the grader is root, and limits on
CPU time, wall time, memory, processes, file size, open files and output size. Where the OS refuses
namespaces the zygote falls back, with a logged warning, to rlimits + process group + clean env.
"""

from stages.envs.sandbox.client import Sandbox, SandboxError
from stages.envs.sandbox.limits import CLEAN_ENV, RunResult, SandboxLimits

__all__ = ["CLEAN_ENV", "RunResult", "Sandbox", "SandboxError", "SandboxLimits"]
