"""The torchrun command line that starts a module on every rank of a job, on one node or several.

Why shared: every trainer that runs the native engine on several GPUs (sft-trainer, spin) starts its workers the
same way, and the traps are the same. One node runs ``torchrun --standalone``; several nodes run one torchrun per
node through ``srun`` with a c10d rendezvous on this host (the batch host of the Slurm allocation).

torchrun starts each worker in a session of its own, so a stop signal forwarded to torchrun's group reaches
torchrun alone; it passes the signals it handles on to its workers, waits ``--shutdown-timeout`` seconds, then kills
them. SIGUSR2 is added to those (``--signals-to-handle``): by default it ends torchrun at once and leaves its workers
running, orphaned (seen with torch 2.13). ``--shutdown-timeout`` exists only from torch 2.12 (torch 2.11's torchrun
refuses it and always waits 30 s: found on the GPU machine, whose torch is the images' 2.11), so it is passed only
where the installed torchrun has it; the native engine's workers are asked to stop through a file instead
(``stop_request``), which no torchrun timeout cuts short. verl's SFT workers have no handler and are stopped by it.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HANDLED_SIGNALS = "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR2"  # torchrun forwards these to its workers
WORKER_SHUTDOWN_S = 180  # torchrun: time its workers get to checkpoint after a stop signal, then SIGKILL
RDZV_PORT = 29500


@dataclass(frozen=True)
class World:
    """Where a job runs: ``nodes`` x ``ranks_per_node`` processes (GPUs, or gloo ranks on a CPU)."""

    nodes: int
    ranks_per_node: int
    cpu: bool = False

    @property
    def size(self) -> int:
        return self.nodes * self.ranks_per_node


def detected_world(nodes: int, gpus_per_node: int) -> World:
    """The world this job has: the visible GPUs on each of ``nodes``, or on a machine without CUDA as many gloo
    ranks per node as the manifest asks GPUs (how the multi-GPU path is exercised on a CPU)."""
    import torch

    if torch.cuda.is_available():
        return World(nodes=nodes, ranks_per_node=max(1, torch.cuda.device_count()))
    return World(nodes=nodes, ranks_per_node=max(1, gpus_per_node), cpu=True)


@cache
def torchrun_options() -> frozenset[str]:
    """The option strings the installed torchrun accepts (its own argument parser, without starting it)."""
    from torch.distributed.run import get_args_parser

    return frozenset(o for action in get_args_parser()._actions for o in action.option_strings)


def torchrun_command(world: World, module: str, args: list[str], options: frozenset[str] | None = None) -> list[str]:
    """The command that starts ``python -m module args`` on every rank of ``world`` (``options``: what torchrun
    accepts, the installed one's by default)."""
    accepted = torchrun_options() if options is None else options
    run = [sys.executable, "-m", "torch.distributed.run", f"--signals-to-handle={HANDLED_SIGNALS}"]
    if "--shutdown-timeout" in accepted:
        run.append(f"--shutdown-timeout={WORKER_SHUTDOWN_S}")
    if world.nodes == 1:
        return [*run, "--standalone", "--nnodes=1", f"--nproc_per_node={world.ranks_per_node}", "-m", module, *args]
    job_id = os.environ.get("SLURM_JOB_ID", "fllm")
    srun = ["srun", f"--nodes={world.nodes}", f"--ntasks={world.nodes}", "--ntasks-per-node=1",
            "--kill-on-bad-exit=1"]
    rdzv = [f"--nnodes={world.nodes}", f"--nproc_per_node={world.ranks_per_node}", "--rdzv_backend=c10d",
            f"--rdzv_endpoint={socket.getfqdn()}:{RDZV_PORT}", f"--rdzv_id={job_id}"]
    return [*srun, *run, *rdzv, "-m", module, *args]


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment plus ``extra``, with the ``stages`` package importable in every worker."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env
